package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// request is a signed-in request: the API key (read again for every
// request) and its console session.
type request struct {
	*http.Request
	key    storage.APIKey
	sess   session
	cookie string
}

// actor is who the domain audits for a change made in this request: the
// key's name, with the console as the channel.
func (r *request) actor() authority.Actor {
	return authority.Actor{Name: r.key.Name, Addr: r.RemoteAddr, Channel: authority.ChannelConsole}
}

func (c *Console) cookieName() string {
	if c.cfg.Secure {
		return secureCookieName
	}
	return cookieName
}

// signedIn wraps a handler that needs a session whose key may do op. A
// request without a live session is sent to sign in (401 for anything but
// a page load); a key without the scope gets 403; a POST without the
// session's CSRF token gets 403.
func (c *Console) signedIn(op string, h func(http.ResponseWriter, *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(c.cookieName())
		var sess session
		ok := err == nil
		if ok {
			sess, ok = c.sessions.get(ck.Value)
		}
		var key storage.APIKey
		if ok {
			key, ok = c.liveKey(r.Context(), sess.keyID)
			if !ok {
				c.sessions.end(ck.Value)
			}
		}
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in (or the session ended): sign in again at /console/login", http.StatusUnauthorized)
			return
		}
		req := &request{Request: r, key: key, sess: sess, cookie: ck.Value}
		if r.Method == http.MethodPost && (!crossOriginOK(r) || !sameToken(r.PostFormValue("csrf"), sess.csrf)) {
			http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		if !c.may(key, op) {
			scope, _ := c.cfg.Scope(op)
			c.auth.RecordDenied(r.Context(), req.actor(), "console "+op, "missing scope "+scope)
			c.renderStatus(w, req, http.StatusForbidden, "denied", "Not allowed", map[string]string{"Scope": scope})
			return
		}
		h(w, req)
	})
}

// liveKey reads the API key of a session: a key revoked or expired since
// sign-in ends the session.
func (c *Console) liveKey(ctx context.Context, id string) (storage.APIKey, bool) {
	keys, err := c.auth.ListAPIKeys(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "console: reading API keys", "err", err)
		return storage.APIKey{}, false
	}
	now := c.auth.Config().Clock()
	i := slices.IndexFunc(keys, func(k storage.APIKey) bool { return k.ID == id })
	if i < 0 {
		return storage.APIKey{}, false
	}
	k := keys[i]
	if !k.RevokeTime.IsZero() || (!k.ExpireTime.IsZero() && !now.Before(k.ExpireTime)) {
		return storage.APIKey{}, false
	}
	return k, true
}

// signinLimiter bounds failed sign-ins (all addresses together): the
// secret is long and random, so this only keeps a flood from filling the
// audit trail and the CPU.
type signinLimiter struct {
	clock func() time.Time
	lim   *rate.Limiter
}

func newSigninLimiter(clock func() time.Time) *signinLimiter {
	return &signinLimiter{clock: clock, lim: rate.NewLimiter(5, 20)}
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, &request{Request: r}, "login", "Sign in", nil)
}

// login exchanges an API key for a session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !crossOriginOK(r) {
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	if c.signins.lim.TokensAt(c.signins.clock()) < 1 {
		http.Error(w, "too many failed sign-ins; retry in a few seconds", http.StatusTooManyRequests)
		return
	}
	secret := strings.TrimSpace(r.PostFormValue("key"))
	key, err := c.auth.Authenticate(r.Context(), secret)
	if err != nil {
		if !errors.Is(err, authority.ErrAPIKeyInvalid) {
			c.log.ErrorContext(r.Context(), "console: sign-in", "err", err)
			http.Error(w, "internal error; the authority logged the cause", http.StatusInternalServerError)
			return
		}
		c.signins.lim.AllowN(c.signins.clock(), 1)
		c.auth.RecordDenied(r.Context(), authority.Actor{Addr: r.RemoteAddr, Channel: authority.ChannelConsole}, "console sign-in", "invalid API key")
		c.renderStatus(w, &request{Request: r}, http.StatusUnauthorized, "login", "Sign in",
			map[string]string{"Error": "That API key is unknown, revoked or expired."})
		return
	}
	cookie := c.sessions.create(key.ID)
	http.SetCookie(w, &http.Cookie{
		Name: c.cookieName(), Value: cookie, Path: "/", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL.Seconds()),
	})
	http.Redirect(w, r, c.home(key), http.StatusSeeOther)
}

// home is the first page key may see.
func (c *Console) home(key storage.APIKey) string {
	if n := c.nav(key, ""); len(n) > 0 {
		return n[0].Path
	}
	return "/console/login"
}

// logout ends the session server-side and clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *request) {
	c.sessions.end(r.cookie)
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r.Request, "/console/login", http.StatusSeeOther)
}

// crossOriginOK refuses a request a browser says comes from another site
// (Sec-Fetch-Site, or an Origin other than this host).
func crossOriginOK(r *http.Request) bool {
	return http.NewCrossOriginProtection().Check(r) == nil
}
