package authority

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Page sizes of the List calls.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Page asks for one page of a listing.
type Page struct {
	Size  int32  // 0 = DefaultPageSize
	Token string // next_page_token of the previous page
}

// pageToken is the opaque next_page_token: where the listing stopped, and a
// fingerprint of the listing and its filters, so that a token used with
// another listing or other filters is refused instead of silently
// returning the wrong rows.
type pageToken struct {
	After string `json:"a"`
	Query string `json:"q"`
}

func queryFingerprint(listing string, filters any) string {
	b, _ := json.Marshal(filters) // plain structs of strings and numbers
	h := sha256.Sum256(append([]byte(listing+"\x00"), b...))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// start validates the page and returns the size and the ID to start after.
func (p Page) start(listing string, filters any) (size int, after string, err error) {
	switch {
	case p.Size < 0:
		return 0, "", invalid("page_size", "must not be negative")
	case p.Size == 0:
		size = DefaultPageSize
	case p.Size > MaxPageSize:
		return 0, "", invalid("page_size", "must be at most %d", MaxPageSize)
	default:
		size = int(p.Size)
	}
	if p.Token == "" {
		return size, "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(p.Token)
	var t pageToken
	if err == nil {
		err = json.Unmarshal(raw, &t)
	}
	if err != nil || t.After == "" {
		return 0, "", fmt.Errorf("%w: not a page token of this API", ErrInvalidPageToken)
	}
	if t.Query != queryFingerprint(listing, filters) {
		return 0, "", fmt.Errorf("%w: the token belongs to another listing or other filters; repeat the filters of the first page", ErrInvalidPageToken)
	}
	return size, t.After, nil
}

func nextPageToken(listing string, filters any, lastID string) string {
	b, _ := json.Marshal(pageToken{After: lastID, Query: queryFingerprint(listing, filters)})
	return base64.RawURLEncoding.EncodeToString(b)
}

// collect reads up to size items from seq (which yields in ID order, after
// the page start), keeping those that match keep, and returns them with the
// next page token ("" on the last page).
func collect[T any](listing string, filters any, size int, seq func(yield func(T, error) bool), id func(T) string, keep func(T) bool) ([]T, string, error) {
	var out []T
	var err error
	more := false
	seq(func(v T, e error) bool {
		if e != nil {
			err = e
			return false
		}
		if keep != nil && !keep(v) {
			return true
		}
		if len(out) == size {
			more = true
			return false
		}
		out = append(out, v)
		return true
	})
	if err != nil {
		return nil, "", err
	}
	if !more {
		return out, "", nil
	}
	return out, nextPageToken(listing, filters, id(out[len(out)-1])), nil
}
