package console

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/fleet"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the console serves over.
type Config struct {
	Authority *authority.Authority
	Fleet     *fleet.Fleet
	// Scope returns the scope an API key needs to call a gRPC method (by
	// its full name), from the server's one table; ok is false for a method
	// the table does not grant by scope.
	Scope func(fullMethod string) (scope string, ok bool)
	// Secure marks cookies Secure: the listener serves TLS.
	Secure bool
	// SessionTTL bounds a console session from sign-in (default 8h);
	// IdleTTL from its last request (default 30m).
	SessionTTL, IdleTTL time.Duration
	// Closing is closed when the server shuts down: live streams end then,
	// so that they do not hold the HTTP server's graceful shutdown.
	Closing <-chan struct{}
	// LiveInterval is how often live parts re-read the fleet (default 500ms).
	LiveInterval time.Duration
	Logger       *slog.Logger
}

// Console serves the pages.
type Console struct {
	cfg      Config
	auth     *authority.Authority
	sessions *sessions
	pages    map[string]*template.Template
	revs     *banRevisions
	signins  *signinLimiter
	log      *slog.Logger
}

// New returns the console over cfg.
func New(cfg Config) *Console {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = 30 * time.Minute
	}
	if cfg.LiveInterval <= 0 {
		cfg.LiveInterval = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg, auth: cfg.Authority, log: cfg.Logger, revs: newBanRevisions(10000),
		signins: newSigninLimiter(cfg.Authority.Config().Clock)}
	c.sessions = newSessions(cfg.Authority.Config().Clock, cfg.SessionTTL, cfg.IdleTTL)
	c.pages = pages
	return c
}

// Handler serves every path under /console/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/bans", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.Handle("POST /console/logout", c.signedIn("", c.logout))

	mux.Handle("GET /console/bans", c.signedIn(opListBans, c.bansPage))
	mux.Handle("POST /console/bans", c.signedIn(opCreateBan, c.createBan))
	mux.Handle("GET /console/bans/{id}", c.signedIn(opGetBan, c.banPage))
	mux.Handle("POST /console/bans/{id}/lift", c.signedIn(opLiftBan, c.liftBan))
	mux.Handle("GET /console/live/bans", c.signedIn(opListBans, c.liveBans))

	mux.Handle("GET /console/audit", c.signedIn(opAudit, c.auditPage))

	mux.Handle("GET /console/sessions", c.signedIn(opListSessions, c.sessionsPage))
	mux.Handle("POST /console/sessions/{id}/revoke", c.signedIn(opRevokeSession, c.revokeSession))
	mux.Handle("POST /console/sessions/revoke-user", c.signedIn(opRevokeUser, c.revokeUser))

	mux.Handle("GET /console/fleet", c.signedIn(opFleet, c.fleetPage))
	mux.Handle("GET /console/live/fleet", c.signedIn(opFleet, c.liveFleet))

	mux.Handle("GET /console/keys", c.signedIn(opListKeys, c.keysPage))
	mux.Handle("POST /console/keys/rotate", c.signedIn(opRotateKey, c.rotateKey))
	mux.Handle("GET /console/apikeys", c.signedIn(opListAPIKeys, c.apiKeysPage))
	mux.Handle("POST /console/apikeys", c.signedIn(opCreateAPIKey, c.createAPIKey))
	mux.Handle("POST /console/apikeys/{id}/revoke", c.signedIn(opRevokeAPIKey, c.revokeAPIKey))
	return securityHeaders(mux)
}

// securityHeaders sets the headers every answer carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
