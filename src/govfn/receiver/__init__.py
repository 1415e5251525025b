"""The receivers' core: a CloudEvent delivery in, a function invoked through the runtime, an
answer out by Knative's delivery rules (`delivery`). Knows nothing of the transport."""
