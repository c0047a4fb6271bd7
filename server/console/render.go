package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// view is what every page template gets.
type view struct {
	Title   string
	Nav     []navItem
	KeyName string
	CSRF    string
	Notice  string // the outcome of the last change (from the redirect)
	Data    any
	may     func(op string) bool
}

// May reports whether the signed-in key may do op (a template shows only
// the forms it may submit).
func (v view) May(op string) bool { return v.may != nil && v.may(op) }

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"join":      strings.Join,
	"hasPrefix": strings.HasPrefix,
	// The audit page's channel filter offers the channels the domain
	// records.
	"channels": func() []string { return []string{authority.ChannelGRPC, authority.ChannelConsole} },
	"ops": func() map[string]string {
		return map[string]string{
			"CreateBan": opCreateBan, "LiftBan": opLiftBan, "RevokeSession": opRevokeSession,
			"RevokeUser": opRevokeUser, "RotateKey": opRotateKey, "CreateAPIKey": opCreateAPIKey,
			"RevokeAPIKey": opRevokeAPIKey, "Audit": opAudit, "ListSessions": opListSessions,
		}
	},
}

// pages are the embedded templates, each page with the layout, parsed
// once for every Console. They are part of the binary: a broken one fails
// at start-up (template.Must, as regexp.MustCompile), in every test.
var pages = parsePages()

func parsePages() map[string]*template.Template {
	names, _ := fs.Glob(templateFS, "templates/*.html") // a constant, valid pattern
	out := map[string]*template.Template{}
	for _, n := range names {
		file := path.Base(n)
		name := strings.TrimSuffix(file, ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return out
}

// render writes a page with status 200. r.key is zero before sign-in.
func (c *Console) render(w http.ResponseWriter, r *request, page, title string, data any) {
	c.renderStatus(w, r, http.StatusOK, page, title, data)
}

// renderStatus writes a page with status.
func (c *Console) renderStatus(w http.ResponseWriter, r *request, status int, page, title string, data any) {
	v := view{Title: title, Data: data, Notice: r.URL.Query().Get("notice")}
	if r.key.ID != "" {
		v.Nav = c.nav(r.key, r.URL.Path)
		v.KeyName = r.key.Name
		v.CSRF = r.sess.csrf
		v.may = func(op string) bool { return c.may(r.key, op) }
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, v); err != nil {
		c.log.ErrorContext(r.Context(), "console: rendering", "page", page, "err", err)
		http.Error(w, "internal error; the authority logged the cause", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirect answers a change with a redirect to a page that shows notice
// (POST, then redirect, then GET: reloading does not repeat the change).
func redirect(w http.ResponseWriter, r *request, path, notice string) {
	u := path
	if notice != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + "notice=" + url.QueryEscape(notice)
	}
	http.Redirect(w, r.Request, u, http.StatusSeeOther)
}

// fail answers a change or a listing the domain refused: bad input is
// the operator's to fix (400, with the domain's message); anything else
// is logged and answered 500 without details.
func (c *Console) fail(w http.ResponseWriter, r *request, err error) {
	status := http.StatusInternalServerError
	msg := "internal error; the authority logged the cause"
	switch {
	case errors.Is(err, authority.ErrInvalidArgument), errors.Is(err, authority.ErrInvalidPageToken):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, authority.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, authority.ErrBanAlreadyLifted), errors.Is(err, authority.ErrSessionAlreadyRevoked),
		errors.Is(err, authority.ErrLastAdminKey), errors.Is(err, storage.ErrConflict):
		status, msg = http.StatusConflict, err.Error()
	default:
		c.log.ErrorContext(r.Context(), "console", "path", r.URL.Path, "err", err)
	}
	c.renderStatus(w, r, status, "error", fmt.Sprintf("Error %d", status), map[string]string{"Message": msg})
}

func itoa(n int) string { return fmt.Sprint(n) }
