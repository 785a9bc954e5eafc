package proxy

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.spin{display:inline-block;width:1em;height:1em;border:.2em solid #ccc;border-top-color:#555;border-radius:50%;animation:s 1s linear infinite;vertical-align:middle;margin-right:.5em}
@keyframes s{to{transform:rotate(360deg)}}</style></head>
<body><h1>{{if or .Refresh .Wait}}<span class="spin"></span>{{end}}{{.Title}}</h1><p>{{.Message}}</p>
{{with .Wait}}<script>
const ready = new EventSource({{.}});
ready.addEventListener("ready", () => location.reload());
{{/* Refused (the session ended) or cut for good: reload to see why. */ -}}
ready.onerror = () => { if (ready.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 5000); };
</script><noscript><meta http-equiv="refresh" content="5"></noscript>{{end}}
{{if .Link}}<p><a href="{{.Link}}" target="_blank" rel="noopener">{{.LinkText}}</a></p>{{end}}</body></html>
`))

type page struct {
	Title, Message string
	// Refresh reloads the page after that many seconds (0: never).
	Refresh int
	// Wait, when set, is the address of the event stream (WaitParam) the
	// page listens to, reloading itself when it says the server is ready.
	Wait string
	// Link, when set, is a link to open in a new tab, with LinkText.
	Link, LinkText string
}

// wantsHTML reports whether a person (a page load) rather than a script
// made the request: they get a page, scripts get JSON.
func wantsHTML(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

// answer writes a page, or {"message": ...} for scripts, with no caching.
func answer(w http.ResponseWriter, r *http.Request, code int, p page) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if p.Refresh > 0 {
		h.Set("Retry-After", strconv.Itoa(p.Refresh))
	}
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code)
		_ = pageTmpl.Execute(w, p)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": p.Title + ": " + p.Message})
}
