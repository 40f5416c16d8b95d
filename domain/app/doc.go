// Package app holds Vigil's use cases: the coordination of domain rules and ports that each
// process role runs. Each use case declares the small interfaces it needs next to itself;
// adapters satisfy them. Nothing here knows about SQL, NATS or HTTP.
package app
