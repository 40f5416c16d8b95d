package account

import "context"

type clientKey struct{}

// WithClient returns ctx carrying the client a request came from, so use cases outside
// this package can audit what it did without every signature taking a Client.
func WithClient(ctx context.Context, cl Client) context.Context {
	return context.WithValue(ctx, clientKey{}, cl)
}

// ClientFrom returns the client WithClient stored in ctx, or the zero Client.
func ClientFrom(ctx context.Context) Client {
	cl, _ := ctx.Value(clientKey{}).(Client)
	return cl
}
