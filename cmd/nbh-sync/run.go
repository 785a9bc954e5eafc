package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/daemon"
)

func newRunCmd(g *globals) *cobra.Command {
	var o daemon.Options
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: watch git, build images, reconcile containers",
		Long: `Run starts the daemon. It runs level-triggered passes — pull, build what
changed, container pass — whenever something may have changed:

  polling      schedules.pull of courses.yaml (default @every 5m)
  passes       schedules.reconcile (default @every 5m) runs a container pass
  rebuilds     schedules.rebuild forces a no-cache rebuild of every image
  webhooks     POST /hooks/{github,gitlab,gitea,forgejo,generic} (signed)
  file watch   a config or course repo given as a local path: a commit there
               triggers a pass within a second
  manual       nbh-sync sync, POST /api/sync

A burst of triggers becomes one pending pass. It serves, on --listen (localhost
by default): the dashboard at /, /api/... (status, history, plan, spawn, sync),
/metrics for Prometheus, /healthz and /readyz; the same API on the unix socket
ROOT/state/api.sock (mode 0600), where the command line finds it. Mutating API
calls need the bearer token of --api-token-file; webhooks need the secret of
--webhook-secret-file. The dashboard and the read-only API answer to localhost,
IP addresses and the names of --allowed-host (a reverse proxy's name).

With --proxy-listen it also runs the students' front door: an authenticating
reverse proxy serving each student's server under its prefix (/u/COURSE/STUDENT/
when the container command uses {prefix} as base_url, else /PORT/). POST
/api/spawn then answers a launch_url, valid once for a minute, where the site's
front end sends the student's browser; the session key is ROOT/state/proxy-session.key.
With --proxy-host-template each server is also on a host of its own (e.g.
{student}-{course}.nb.example.org, behind a wildcard DNS record and certificate),
so that one student's pages can never script another's server; launch URLs
then take that host, with the scheme and port of --proxy-public-url.
--proxy-embed-allow names a learning platform whose pages may show the
students' notebooks in an iframe (TLS, or --proxy-secure-cookies behind a
TLS-ending proxy, is needed for the session cookie of a frame).

With --demo (make run passes it) each course card of the dashboard has "Open a
demo student": it starts the course's server of the demo student and sends the
browser through the front door, with no token. It is refused unless --listen is
a loopback address and the front door is on: a demo on this machine only.

SIGTERM (or Ctrl-C) stops it gracefully: no new pass starts, a running one gets
--grace to finish, then is cancelled at a safe point.`,
		Example: `  nbh-sync run --config https://git.example.org/site/config.git --root /var/lib/nbh-sync
  nbh-sync run --config ./examples --root ./.run --listen 127.0.0.1:8787
  nbh-sync run --config ... --proxy-listen 127.0.0.1:8000 --proxy-public-url https://hub.example.org --proxy-secure-cookies
  nbh-sync run --config ... --proxy-listen 127.0.0.1:8000 --proxy-public-url https://hub.example.org --proxy-host-template '{student}-{course}.nb.example.org'
  nbh-sync run --config ... --proxy-listen 127.0.0.1:8000 --proxy-public-url https://hub.example.org --proxy-secure-cookies --proxy-embed-allow https://lms.example.org`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Config, o.Root, o.Log = g.config, g.root, g.log
			creds, err := g.configCredentials()
			if err != nil {
				return err
			}
			o.ConfigCredentials, o.SafeDirectories = creds, g.safeDirs
			if !cmd.Flags().Changed("api-token-file") && !fileExists(g.apiTokenFile) {
				g.log.Warn("no API token: mutating API calls are refused", "file", g.apiTokenFile)
			} else {
				o.TokenFile = g.apiTokenFile
			}
			return daemon.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", defaultListen, "HTTP address of the dashboard, API and metrics")
	f.StringVar(&o.WebhookSecretFile, "webhook-secret-file", "", "file holding the webhook secret (without it, webhooks are refused)")
	f.StringSliceVar(&o.AllowedHosts, "allowed-host", nil, "a host name the dashboard and read-only API answer to, besides localhost and IP addresses (a reverse proxy's name; repeatable)")
	f.DurationVar(&o.PassTimeout, "pass-timeout", time.Hour, "longest a pass may run")
	f.DurationVar(&o.Grace, "grace", 30*time.Second, "how long SIGTERM lets a running pass finish")
	f.StringVar(&o.Proxy.Listen, "proxy-listen", "", "address of the students' front door (off when empty), e.g. 127.0.0.1:8000")
	f.StringVar(&o.Proxy.PublicURL, "proxy-public-url", "", "where browsers reach the front door, e.g. https://hub.example.org (default: its address)")
	f.StringVar(&o.Proxy.LoginURL, "proxy-login-url", "", "where the front door sends a browser without a session (default: a 403 page)")
	f.StringVar(&o.Proxy.HostTemplate, "proxy-host-template", "", "serve each student's server on its own host, e.g. {student}-{course}.nb.example.org (a wildcard DNS record and certificate for *.nb.example.org): every student's pages get an origin of their own; names that are not short lowercase letters and digits become x+hash")
	f.StringSliceVar(&o.Proxy.EmbedAllow, "proxy-embed-allow", nil, "an origin whose pages may show the front door in an iframe, e.g. https://lms.example.org (a learning platform; repeatable); without it, only the front door's own pages may")
	f.BoolVar(&o.Proxy.SecureCookies, "proxy-secure-cookies", false, "mark session cookies Secure: set it when TLS ends in nginx or Caddy in front")
	f.StringVar(&o.Demo, "demo", "", "a demo on this machine: the dashboard opens this student's notebook with no token (--demo alone: alice); refused unless --listen is loopback; never in production")
	f.Lookup("demo").NoOptDefVal = "alice"
	return cmd
}
