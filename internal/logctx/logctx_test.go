package logctx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	for _, tc := range []struct {
		desc string
		log  func(l *slog.Logger, ctx context.Context)
		want string
	}{
		{"no attrs in the context", func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "hi") },
			"level=INFO msg=hi\n"},
		{"the context's attrs after the line's", func(l *slog.Logger, ctx context.Context) {
			l.InfoContext(With(ctx, slog.Int("pass", 17)), "built", "image", "a")
		}, "level=INFO msg=built image=a pass=17\n"},
		{"nested With adds, the outer context unchanged", func(l *slog.Logger, ctx context.Context) {
			outer := With(ctx, slog.Int("pass", 17))
			inner := With(outer, slog.String("course", "c"))
			l.InfoContext(inner, "in")
			l.InfoContext(outer, "out")
		}, "level=INFO msg=in pass=17 course=c\nlevel=INFO msg=out pass=17\n"},
		{"through With and WithGroup of the logger", func(l *slog.Logger, ctx context.Context) {
			l.With("site", "s").WithGroup("g").InfoContext(With(ctx, slog.Int("pass", 1)), "m", "k", "v")
		}, "level=INFO msg=m site=s g.k=v g.pass=1\n"},
		{"a line without a context carries nothing", func(l *slog.Logger, ctx context.Context) {
			_ = With(ctx, slog.Int("pass", 17))
			l.Info("plain")
		}, "level=INFO msg=plain\n"},
	} {
		var buf bytes.Buffer
		h := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}})
		tc.log(slog.New(Handler(h)), context.Background())
		if got := buf.String(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.desc, got, tc.want)
		}
	}
}

func TestWithDoesNotShareBacking(t *testing.T) {
	base := With(context.Background(), slog.Int("a", 1), slog.Int("b", 2))
	x := With(base, slog.Int("x", 1))
	y := With(base, slog.Int("y", 1))
	if got := Attrs(x); len(got) != 3 || got[2].Key != "x" {
		t.Errorf("x: %v", got)
	}
	if got := Attrs(y); len(got) != 3 || got[2].Key != "y" {
		t.Errorf("y: %v", got)
	}
	if s := slog.GroupValue(Attrs(base)...).String(); !strings.Contains(s, "a=1") || strings.Contains(s, "x") {
		t.Errorf("base changed: %s", s)
	}
}
