package server

import (
	"sync"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// heldKeys are the API keys of this replica's open Watch streams, as last
// read from the store: when the stream opened and at each re-check (at
// least once per checkpoint interval, reauthenticate).
//
// ReportProgress is authenticated against them without a store read. A
// mirror reports after every change it applies, so at 1,000 mirrors one
// ban costs 1,000 reports, and reading and decoding the key record was a
// fifth of each report's CPU. Nothing is weakened: a report is only
// accepted for a stream the same key opened (subscribers.report), and a key
// revoked or expired meanwhile fails its stream's next re-check, which
// ends the stream and with it every report the key could make for it. Until
// then the stream is served anyway.
type heldKeys struct {
	mu sync.RWMutex
	m  map[string]*heldKey
}

type heldKey struct {
	key     storage.APIKey
	streams int
}

// hold records k for one more open stream and returns its release.
func (h *heldKeys) hold(k storage.APIKey) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*heldKey{}
	}
	e := h.m[k.ID]
	if e == nil {
		e = &heldKey{}
		h.m[k.ID] = e
	}
	e.key = k
	e.streams++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if e.streams--; e.streams == 0 {
			delete(h.m, k.ID)
		}
	}
}

// refresh replaces the record of a held key with one just read.
func (h *heldKeys) refresh(k storage.APIKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.m[k.ID]; e != nil {
		e.key = k
	}
}

// get returns the record of key id, if an open stream holds it.
func (h *heldKeys) get(id string) (storage.APIKey, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if e := h.m[id]; e != nil {
		return e.key, true
	}
	return storage.APIKey{}, false
}
