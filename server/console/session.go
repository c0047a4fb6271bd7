package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// cookieName is the console session cookie. The __Host- prefix (which
// requires Secure) is used under TLS, so that no subdomain can set it.
const (
	cookieName       = "portcullis_console"
	secureCookieName = "__Host-portcullis_console"
)

// maxSessions bounds the sessions held; signing in past it ends the
// oldest.
const maxSessions = 1000

// session is one signed-in browser.
type session struct {
	keyID    string
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessions are the console sessions, by the SHA-256 of their cookie (a
// memory dump does not give usable cookies).
type sessions struct {
	clock  func() time.Time
	ttl    time.Duration
	idle   time.Duration
	mu     sync.Mutex
	byHash map[[32]byte]*session
}

func newSessions(clock func() time.Time, ttl, idle time.Duration) *sessions {
	return &sessions{clock: clock, ttl: ttl, idle: idle, byHash: map[[32]byte]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for the API key and returns its cookie value.
func (s *sessions) create(keyID string) string {
	cookie := randomToken()
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byHash) >= maxSessions {
		var oldest [32]byte
		var t time.Time
		for h, ss := range s.byHash {
			if t.IsZero() || ss.created.Before(t) {
				oldest, t = h, ss.created
			}
		}
		delete(s.byHash, oldest)
	}
	s.byHash[sha256.Sum256([]byte(cookie))] = &session{keyID: keyID, csrf: randomToken(), created: now, lastSeen: now}
	return cookie
}

// get returns the live session of a cookie, and marks it seen.
func (s *sessions) get(cookie string) (session, bool) {
	h := sha256.Sum256([]byte(cookie))
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byHash[h]
	if !ok {
		return session{}, false
	}
	if now.Sub(ss.created) >= s.ttl || now.Sub(ss.lastSeen) >= s.idle {
		delete(s.byHash, h)
		return session{}, false
	}
	ss.lastSeen = now
	return *ss, true
}

// end deletes the session of a cookie.
func (s *sessions) end(cookie string) {
	h := sha256.Sum256([]byte(cookie))
	s.mu.Lock()
	delete(s.byHash, h)
	s.mu.Unlock()
}

// endKey deletes every session of an API key (it was revoked).
func (s *sessions) endKey(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, ss := range s.byHash {
		if ss.keyID == keyID {
			delete(s.byHash, h)
		}
	}
}

func sameToken(a, b string) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// alive reports whether a cookie's session is live, without marking it
// seen (an open live page does not keep a session from idling out).
func (s *sessions) alive(cookie string) bool {
	h := sha256.Sum256([]byte(cookie))
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byHash[h]
	return ok && now.Sub(ss.created) < s.ttl && now.Sub(ss.lastSeen) < s.idle
}
