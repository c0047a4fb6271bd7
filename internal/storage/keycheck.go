package storage

import (
	"fmt"
	"strings"
)

// Both backends build keys and index entries from record fields joined by
// a NUL byte: a key field must not be empty (unless noted) nor contain
// one. The CheckKeys methods are that rule, one per record kind, shared by
// the backends' writes; errors wrap ErrInvalidRecord.

// checkKeyPart checks one field that goes into a key.
func checkKeyPart(field, v string, mayBeEmpty bool) error {
	if v == "" && !mayBeEmpty {
		return fmt.Errorf("%w: %s is empty", ErrInvalidRecord, field)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%w: %s %q contains a NUL byte", ErrInvalidRecord, field, v)
	}
	return nil
}

// keyParts checks fields given as name, value pairs that must not be empty.
func keyParts(nameValues ...string) error {
	for i := 0; i+1 < len(nameValues); i += 2 {
		if err := checkKeyPart(nameValues[i], nameValues[i+1], false); err != nil {
			return err
		}
	}
	return nil
}

// CheckKeyPart checks a value that a backend puts into a key of its own
// (a presence ID, say).
func CheckKeyPart(field, v string) error { return checkKeyPart(field, v, false) }

// CheckKeys checks the session's key and index fields; its user and device
// may be empty.
func (s Session) CheckKeys() error {
	if err := keyParts("session ID", s.ID, "tenant ID", s.TenantID); err != nil {
		return err
	}
	if err := checkKeyPart("user ID", s.UserID, true); err != nil {
		return err
	}
	return checkKeyPart("device ID", s.DeviceID, true)
}

// CheckKeys checks the refresh token's hash (its key) and session ID.
func (r RefreshToken) CheckKeys() error {
	if err := CheckRefreshTokenHash(r.Hash); err != nil {
		return err
	}
	return checkKeyPart("refresh token session ID", r.SessionID, false)
}

// CheckRefreshTokenHash checks a refresh token's key.
func CheckRefreshTokenHash(hash []byte) error {
	if len(hash) == 0 {
		return fmt.Errorf("%w: refresh token hash is empty", ErrInvalidRecord)
	}
	return nil
}

// CheckKeys checks the ban's key and index fields.
func (b Ban) CheckKeys() error {
	return keyParts("ban ID", b.ID, "tenant ID", b.TenantID, "subject kind", string(b.Kind), "subject value", b.Value)
}

// CheckKeys checks the audit record's key and index fields; its subject
// and actor may be empty (no index entry).
func (a AuditRecord) CheckKeys() error {
	if err := checkKeyPart("audit record ID", a.ID, false); err != nil {
		return err
	}
	if err := checkKeyPart("audit subject", a.Subject, true); err != nil {
		return err
	}
	return checkKeyPart("audit actor", a.Actor, true)
}

// CheckKeys checks the API key's key.
func (k APIKey) CheckKeys() error { return checkKeyPart("API key ID", k.ID, false) }

// CheckKeys checks the signing key's key.
func (k SigningKey) CheckKeys() error { return checkKeyPart("signing key ID", k.ID, false) }
