package bolt

import (
	"errors"
	"fmt"
	"iter"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// errTxDone is returned by a transaction (or an iterator) used after the
// View or Update function that received it returned: the bbolt transaction
// behind it is gone.
var errTxDone = errors.New("storage/bolt: transaction used after its function returned")

// readTx implements storage.ReadTx over a bbolt transaction. writeTx embeds
// it, so the read methods also serve Update functions.
type readTx struct {
	tx  *bbolt.Tx
	rev int64 // revision visible to this transaction
	// writable makes iterators reposition after each yield, because the
	// consumer may have written to the bucket under the cursor.
	writable bool
	done     bool
}

var _ storage.ReadTx = (*readTx)(nil)

func (t *readTx) usable() error {
	if t.done {
		return errTxDone
	}
	return nil
}

func (t *readTx) bucket(name []byte) (*bbolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing", errCorrupt, name)
	}
	return b, nil
}

func (t *readTx) ReadRecord(tb storage.Table, id string, _ bool, rec any) (bool, error) {
	if err := t.usable(); err != nil {
		return false, err
	}
	b, err := t.bucket(tableBuckets[tb])
	if err != nil {
		return false, err
	}
	v := b.Get([]byte(id))
	if v == nil || rec == nil {
		return v != nil, nil
	}
	return true, decodeInto(nil, tb.String(), v, rec)
}

func (t *readTx) Revision() int64 { return t.rev }

func (t *readTx) Session(id string) (storage.Session, error) {
	return storage.Get[storage.Session](t, storage.TableSessions, id)
}

func (t *readTx) Sessions(q storage.SessionQuery) iter.Seq2[storage.Session, error] {
	match := q.Matches
	var sc scanSpec
	switch {
	case q.TenantID != "" && q.UserID != "":
		sc = scanSpec{index: bucketSessionsByUser, prefix: indexPrefix(q.TenantID, q.UserID)}
	case q.TenantID != "" && q.DeviceID != "":
		sc = scanSpec{index: bucketSessionsByDevice, prefix: indexPrefix(q.TenantID, q.DeviceID)}
	case q.TenantID != "":
		sc = scanSpec{index: bucketSessionsByTenant, prefix: indexPrefix(q.TenantID)}
	}
	sc.primary, sc.kind, sc.after = bucketSessions, "session", q.After
	return scan(t, sc, match)
}

func (t *readTx) RefreshToken(hash []byte) (storage.RefreshToken, error) {
	return storage.Get[storage.RefreshToken](t, storage.TableRefreshTokens, string(hash))
}

func (t *readTx) RefreshTokens(sessionID string) iter.Seq2[storage.RefreshToken, error] {
	if sessionID == "" {
		return func(func(storage.RefreshToken, error) bool) {} // no token has an empty session ID
	}
	sc := scanSpec{primary: bucketRefreshTokens, index: bucketRefreshTokensBySession, prefix: indexPrefix(sessionID), kind: "refresh token"}
	return scan(t, sc, func(*storage.RefreshToken) bool { return true })
}

func (t *readTx) Ban(id string) (storage.Ban, error) {
	return storage.Get[storage.Ban](t, storage.TableBans, id)
}

func (t *readTx) Bans(q storage.BanQuery) iter.Seq2[storage.Ban, error] {
	match := q.Matches
	var sc scanSpec
	switch {
	case q.TenantID != "" && q.Kind != "" && q.Value != "":
		sc = scanSpec{index: bucketBansBySubject, prefix: indexPrefix(q.TenantID, string(q.Kind), q.Value)}
	case q.TenantID != "":
		sc = scanSpec{index: bucketBansByTenant, prefix: indexPrefix(q.TenantID)}
	}
	sc.primary, sc.kind, sc.after = bucketBans, "ban", q.After
	return scan(t, sc, match)
}

func (t *readTx) AuditRecords(q storage.AuditQuery) iter.Seq2[storage.AuditRecord, error] {
	match := q.Matches
	var sc scanSpec
	switch {
	case q.Subject != "":
		sc = scanSpec{index: bucketAuditBySubject, prefix: indexPrefix(q.Subject)}
	case q.Actor != "":
		sc = scanSpec{index: bucketAuditByActor, prefix: indexPrefix(q.Actor)}
	}
	sc.primary, sc.kind, sc.after = bucketAudit, "audit record", q.After
	return scan(t, sc, match)
}

func (t *readTx) APIKey(id string) (storage.APIKey, error) {
	return storage.Get[storage.APIKey](t, storage.TableAPIKeys, id)
}

func (t *readTx) APIKeys() iter.Seq2[storage.APIKey, error] {
	return scan(t, scanSpec{primary: bucketAPIKeys, kind: "api key"}, func(*storage.APIKey) bool { return true })
}

func (t *readTx) SigningKeys() iter.Seq2[storage.SigningKey, error] {
	return scan(t, scanSpec{primary: bucketSigningKeys, kind: "signing key"}, func(*storage.SigningKey) bool { return true })
}
