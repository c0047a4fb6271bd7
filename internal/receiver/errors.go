package receiver

import "errors"

// Sentinels of refused SETs and pushes; server/errors.go maps them onto the
// SET_* reasons (and ErrPushUnauthorized onto API_KEY_INVALID, 401). A
// refused SET applied nothing.
var (
	// ErrSETInvalid: malformed, unsigned, iat outside the window, or a
	// subject the receiver cannot map (RFC 8935 invalid_request).
	ErrSETInvalid = errors.New("security event token invalid")
	// ErrSETKey: not signed by a key of the transmitter (invalid_key).
	ErrSETKey = errors.New("security event token not signed by a key of the transmitter")
	// ErrSETIssuer: its iss is not the transmitter's issuer (invalid_issuer).
	ErrSETIssuer = errors.New("security event token from another issuer")
	// ErrSETAudience: its aud does not name this receiver (invalid_audience).
	ErrSETAudience = errors.New("security event token for another audience")
	// ErrSETReplayed: its jti was received from this transmitter before.
	ErrSETReplayed = errors.New("security event token received before")
	// ErrSETPredecessorMissing: a pushed SET whose predecessor
	// (ssf.SET.PrevJTI) was not applied within Config.HoldTimeout; nothing
	// of it was applied and the transmitter sends it again (retryable).
	ErrSETPredecessorMissing = errors.New("security event token's predecessor not applied")
	// ErrPushUnauthorized: a push without the Authorization this receiver
	// gave the transmitter.
	ErrPushUnauthorized = errors.New("push not authorized")
)
