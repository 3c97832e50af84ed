"""Resolution for `lock` and `hw`: a pure step per model (`steps`) and the driver that fetches
what it asks for from the registries (`driver`)."""
