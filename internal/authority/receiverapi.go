package authority

import (
	"context"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// What the Shared Signals receiver (internal/receiver) needs from the
// domain beyond its actions on bans and sessions, which it calls like any
// other caller: its own records (transmitters, received SETs) and the
// fetch rules of external issuers, which apply to a transmitter's
// configuration and JWKS as they do to an issuer's discovery document.

// Update runs fn in one write transaction of the store. It is for the
// receiver's own records and their audit; bans and revocations go through
// the Authority's methods so that their rules hold.
func (a *Authority) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	return a.store.Update(ctx, fn)
}

// CheckFetchURL applies the external issuers' transport rule to a URL the
// authority fetches or posts to: https, http only on a loopback host or
// under serve --insecure.
func (a *Authority) CheckFetchURL(raw string) error { return a.checkFetchURL(raw) }

// FetchHTTP is the client that fetches external documents: the configured
// one with the fetch timeout, following redirects only to the same host
// and under CheckFetchURL.
func (a *Authority) FetchHTTP() *http.Client { return a.issuerHTTP() }

// GetJSON fetches a JSON document of at most 1 MiB with FetchHTTP and
// returns its Cache-Control max-age, bounded to [1 minute, 24 hours].
func (a *Authority) GetJSON(ctx context.Context, target string, v any) (time.Duration, error) {
	if err := a.checkFetchURL(target); err != nil {
		return 0, err
	}
	return a.getJSON(ctx, target, v)
}
