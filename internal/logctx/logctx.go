// Package logctx carries log attributes in a context. The trigger queue
// puts a pass's ID there, and every line logged during that pass, by any
// package, with the ...Context methods of slog, names the pass: a pass's
// lines can be picked out of a busy log with one filter (pass=17).
package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns a context whose log lines carry attrs after those ctx
// already carries.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	old, _ := ctx.Value(key{}).([]slog.Attr)
	return context.WithValue(ctx, key{}, append(old[:len(old):len(old)], attrs...))
}

// Attrs returns the attributes ctx carries.
func Attrs(ctx context.Context) []slog.Attr {
	attrs, _ := ctx.Value(key{}).([]slog.Attr)
	return attrs
}

// Handler wraps h so that each record gets the attributes of the context
// it is logged with.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if attrs := Attrs(ctx); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.Handler.WithGroup(name)} }
