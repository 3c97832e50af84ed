"""A Hub-compatible HTTP server: `modelsync serve`, a LAN mirror, and the test double of the Hub.

The official `huggingface_hub` client is the judge of fidelity (notes/hub-protocol.md, section 9).
Repositories are folders `<root>/<namespace>/<name>/...`; state lives in `<root>/.hub/` (never
served). Or, read-only, the locked commits of lock files from a blob store (`mirror`).
Modules, top down:

    runner      ServerConfig (config), serve(), start_in_thread() -> ServerHandle
    app         the Hub app and the CDN app, with their routes:
      api         GET /api/models, /api/models/{repo}[/revision/{rev}], /tree/{rev}[/{path}],
                  POST /paths-info/{rev}, GET /refs, /commits/{rev}, /auth-check[/write],
                  PUT /settings, POST /branch/{branch}, /tag/{rev}, GET /api/whoami-v2,
                  POST /api/repos/create, /api/validate-yaml
      resolve     HEAD/GET /{repo}/resolve/{rev}/{path} (sendfile, Range; LFS → 302 to the CDN)
      upload      POST /api/models/{repo}/preupload/{rev}, /commit/{rev} (NDJSON),
                  POST /{repo}.git/info/lfs/objects/batch and /verify, PUT /lfs/upload/{oid}
      cdn         HEAD/GET /cdn/{oid} behind signed, expiring URLs
      ollama      GET /v2/{ns}/{model}/manifests/{ref} and /blobs/{digest} over an Ollama
                  models folder (an Ollama registry; blobs redirect to the CDN origin)
    context, responses   shared state, request helpers, JSON errors and request counting
    source      Repos: what the read routes need, from `repos` (--root) or `mirror` (--lock)
    mirror      LockedRepos: locked commits answered from a blob store (`serve --lock`)
    bodies      untrusted JSON bodies: size and depth limits, parsed off the loop when large
    repos       RepoStore: repositories, commits, refs, folder import and write-back
    blobs, persist, counters   blob store, JSON state on disk, counters and event log
    auth        tokens file, Bearer tokens, visibility, gating, write permission
    pure        model, gitobj, names, ranges, listing, treeview, info, card, signing, hub_errors
"""
