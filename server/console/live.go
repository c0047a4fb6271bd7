package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// liveUpdate is one server-sent event: element IDs to their new text, or
// to new HTML rendered by the console's own templates.
type liveUpdate struct {
	Text map[string]string `json:"text,omitempty"`
	HTML map[string]string `json:"html,omitempty"`
}

// maxLiveBans bounds the bans one live stream follows (a page shows 50).
const maxLiveBans = 100

// stream sends what next returns every LiveInterval while it changes,
// until the client leaves, its session ends or the server shuts down. The fleet has no change
// notification for a partial rollout (Fleet.Wait wakes only when every
// mirror has applied a revision), so the console re-reads it: an
// in-memory read of this replica's registry, cheap at any rate a page
// needs.
func (c *Console) stream(w http.ResponseWriter, r *request, next func() liveUpdate) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	tick := time.NewTicker(c.cfg.LiveInterval)
	defer tick.Stop()
	var last liveUpdate
	for {
		if !c.sessions.alive(r.cookie) {
			_, _ = fmt.Fprint(w, "event: ended\ndata: {}\n\n")
			fl.Flush()
			return
		}
		u := next()
		if !maps.Equal(u.Text, last.Text) || !maps.Equal(u.HTML, last.HTML) {
			b, _ := json.Marshal(u) // strings only
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
			last = u
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.cfg.Closing:
			return
		case <-tick.C:
		}
	}
}

// liveBans streams the enforcement of the bans a page lists, and for a
// single ban (its own page) the rollout picture.
func (c *Console) liveBans(w http.ResponseWriter, r *request) {
	ids := r.URL.Query()["id"]
	if len(ids) > maxLiveBans {
		ids = ids[:maxLiveBans]
	}
	rev, _ := strconv.ParseInt(r.URL.Query().Get("rev"), 10, 64)
	c.stream(w, r, func() liveUpdate {
		u := liveUpdate{Text: map[string]string{}}
		for _, id := range ids {
			e := c.enforcement(r.Context(), id, rev)
			u.Text["enf-"+id] = e.Text
			if len(ids) == 1 {
				var buf bytes.Buffer
				if err := c.pages["ban"].ExecuteTemplate(&buf, "rollout", e.Mirrors); err != nil {
					c.log.ErrorContext(r.Context(), "console: rendering a rollout", "err", err)
					continue
				}
				u.HTML = map[string]string{"rollout-" + id: buf.String()}
			}
		}
		return u
	})
}

// liveFleet streams the fleet table.
func (c *Console) liveFleet(w http.ResponseWriter, r *request) {
	c.stream(w, r, func() liveUpdate {
		d, err := c.fleetData(r)
		if err != nil {
			return liveUpdate{}
		}
		var buf bytes.Buffer
		if err := c.pages["fleet"].ExecuteTemplate(&buf, "fleet-table", d); err != nil {
			c.log.ErrorContext(r.Context(), "console: rendering the fleet", "err", err)
			return liveUpdate{}
		}
		return liveUpdate{HTML: map[string]string{"fleet-table": buf.String()}}
	})
}
