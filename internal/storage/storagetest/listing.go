package storagetest

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// listing is the reference semantics of a query that lists records in ID
// order after a cursor (Bans, Sessions, AuditRecords), and the checks
// every such query gets: each query of a set, from each of a set of
// cursors, read whole and page by page, against what the reference filter
// selects from the records written.
type listing[R, Q any] struct {
	name  string                                      // the ReadTx method, for messages
	query func(storage.ReadTx, Q) iter.Seq2[R, error] // the store's
	match func(Q, R) bool                             // the reference filter, the cursor aside
	after func(*Q) *string                            // the query's cursor field
	id    func(R) string
	norm  func(R) R
}

var (
	banListing = listing[storage.Ban, storage.BanQuery]{name: "Bans",
		query: storage.ReadTx.Bans, match: matchBan, after: func(q *storage.BanQuery) *string { return &q.After },
		id: banID, norm: normBan}
	sessionListing = listing[storage.Session, storage.SessionQuery]{name: "Sessions",
		query: storage.ReadTx.Sessions, match: matchSession, after: func(q *storage.SessionQuery) *string { return &q.After },
		id: sessionID, norm: normSession}
	auditListing = listing[storage.AuditRecord, storage.AuditQuery]{name: "AuditRecords",
		query: storage.ReadTx.AuditRecords, match: matchAudit, after: func(q *storage.AuditQuery) *string { return &q.After },
		id: auditID, norm: normAudit}
)

// expect is what q must return from all, in ID order.
func (l listing[R, Q]) expect(all []R, q Q) []R {
	after := *l.after(&q)
	var out []R
	for _, r := range all {
		if l.match(q, r) && l.id(r) > after {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b R) int { return strings.Compare(l.id(a), l.id(b)) })
	return out
}

// get runs q in a read transaction of s.
func (l listing[R, Q]) get(t *testing.T, s storage.Store, q Q) []R {
	t.Helper()
	var got []R
	view(t, s, func(tx storage.ReadTx) error {
		var err error
		got, err = collect(l.query(tx, q))
		return err
	})
	return got
}

// check runs every query from every cursor (afters) against the records
// written (all).
func (l listing[R, Q]) check(t *testing.T, s storage.Store, all []R, queries []Q, afters []string) {
	t.Helper()
	for _, q := range queries {
		for _, after := range afters {
			*l.after(&q) = after
			sameList(t, fmt.Sprintf("%s(%+v)", l.name, q), l.get(t, s, q), l.expect(all, q), l.norm, l.id)
		}
	}
}

// checkPages reads every query page by page, for each page size.
func (l listing[R, Q]) checkPages(t *testing.T, s storage.Store, all []R, queries []Q, sizes []int) {
	t.Helper()
	for _, q := range queries {
		for _, size := range sizes {
			got := pages(t, s, size, func(tx storage.ReadTx, after string) iter.Seq2[R, error] {
				q := q
				*l.after(&q) = after
				return l.query(tx, q)
			}, l.id)
			sameList(t, fmt.Sprintf("pages of %d of %s(%+v)", size, l.name, q), got, l.expect(all, q), l.norm, l.id)
		}
	}
}

// cursors is every cursor a check starts from: none, each record's ID, and
// extra ones between and beyond them.
func cursors[R any](all []R, id func(R) string, extra ...string) []string {
	out := []string{""}
	for _, r := range all {
		out = append(out, id(r))
	}
	return append(out, extra...)
}
