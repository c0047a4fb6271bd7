package bolt

import (
	"bytes"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Check opens the file at path read-only and verifies it: first bbolt's own
// page-level consistency check, then the store's invariants (meta, every
// record decodes under its own key, indexes match records both ways, the
// event log holds exactly the revisions after the compacted one). It returns
// the first problem found. The file must not be open for writing (Check
// waits up to OpenTimeout's default for the lock).
func Check(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: defaultOpenTimeout})
	if err != nil {
		return fmt.Errorf("storage/bolt: check %s: %w", path, err)
	}
	defer func() { _ = db.Close() }()
	err = db.View(func(tx *bbolt.Tx) error {
		var first error
		// Drain the channel: the checker goroutine must finish before the
		// transaction ends.
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("bbolt: %w", first)
		}
		return checkStore(tx)
	})
	if err != nil {
		return fmt.Errorf("storage/bolt: check %s: %w", path, err)
	}
	return nil
}

// checkStore verifies the schema's invariants in tx.
func checkStore(tx *bbolt.Tx) error {
	m, err := readMeta(tx)
	if err != nil {
		return err
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: bucket %s is missing", errCorrupt, name)
		}
	}
	rt := &readTx{tx: tx, rev: m.revision}
	checks := []func(*readTx) error{
		checkSessions, checkBans, checkEvents(m),
		checkRefreshTokens,
		checkAudit,
		checkKeyed(bucketAPIKeys, "api key", func(k storage.APIKey) []byte { return []byte(k.ID) }),
		checkKeyed(bucketSigningKeys, "signing key", func(k storage.SigningKey) []byte { return []byte(k.ID) }),
		checkKeyed(bucketIssuers, "issuer", func(i storage.Issuer) []byte { return []byte(i.URL) }),
		checkKeyed(bucketExternalRevocations, "external revocation", func(r storage.ExternalRevocation) []byte { return []byte(r.Key()) }),
		checkKeyed(bucketSignalStreams, "signal stream", func(s storage.SignalStream) []byte { return []byte(s.ID) }),
		checkKeyed(bucketSignalTransmitters, "signal transmitter", func(x storage.SignalTransmitter) []byte { return []byte(x.ID) }),
		checkKeyed(bucketReceivedSETs, "received SET", func(r storage.ReceivedSET) []byte { return []byte(r.Key()) }),
	}
	for _, check := range checks {
		if err := check(rt); err != nil {
			return err
		}
	}
	return nil
}

// checkKeyed verifies that every record of a bucket decodes and is stored
// under its own key.
func checkKeyed[T any](bucket []byte, kind string, key func(T) []byte) func(*readTx) error {
	return func(t *readTx) error {
		return t.tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			rec, err := decode[T](nil, kind, v)
			if err != nil {
				return err
			}
			if !bytes.Equal(key(rec), k) {
				return fmt.Errorf("%w: %s stored under %q has key %q", errCorrupt, kind, k, key(rec))
			}
			return checkUTC(kind, k, rec)
		})
	}
}

// checkIndexed verifies a primary bucket against its indexes: every record
// has exactly its entries, and every entry names a record that has it.
func checkIndexed[T any](t *readTx, primary []byte, kind string, id func(T) string, entries func(T) []storage.IndexEntry, indexes ...[]byte) error {
	want := make(map[string]bool)
	err := t.tx.Bucket(primary).ForEach(func(k, v []byte) error {
		rec, err := decode[T](nil, kind, v)
		if err != nil {
			return err
		}
		if id(rec) != string(k) {
			return fmt.Errorf("%w: %s stored under %q has ID %q", errCorrupt, kind, k, id(rec))
		}
		if err := checkUTC(kind, k, rec); err != nil {
			return err
		}
		for _, e := range entries(rec) {
			want[string(indexBuckets[e.Index])+"\x00"+e.Prefix+e.ID] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, index := range indexes {
		err := t.tx.Bucket(index).ForEach(func(k, _ []byte) error {
			name := string(index) + "\x00" + string(k)
			if !want[name] {
				return fmt.Errorf("%w: index %s entry %q matches no %s", errCorrupt, index, k, kind)
			}
			delete(want, name)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for name := range want {
		return fmt.Errorf("%w: %s index entry %q is missing", errCorrupt, kind, name)
	}
	return nil
}

func checkSessions(t *readTx) error {
	return checkIndexed(t, bucketSessions, "session",
		func(s storage.Session) string { return s.ID }, storage.Session.IndexEntries,
		bucketSessionsByTenant, bucketSessionsByUser, bucketSessionsByDevice)
}

// checkRefreshTokens verifies the refresh tokens against their index by
// session. The hash is the record's key (and its index key's tail).
func checkRefreshTokens(t *readTx) error {
	return checkIndexed(t, bucketRefreshTokens, "refresh token",
		func(r storage.RefreshToken) string { return string(r.Hash) }, storage.RefreshToken.IndexEntries,
		bucketRefreshTokensBySession)
}

func checkBans(t *readTx) error {
	return checkIndexed(t, bucketBans, "ban",
		func(b storage.Ban) string { return b.ID }, storage.Ban.IndexEntries,
		bucketBansByTenant, bucketBansBySubject)
}

func checkAudit(t *readTx) error {
	return checkIndexed(t, bucketAudit, "audit record",
		func(a storage.AuditRecord) string { return a.ID }, storage.AuditRecord.IndexEntries,
		bucketAuditBySubject, bucketAuditByActor)
}

// checkEvents verifies that the log holds exactly compacted+1..revision,
// each change under its own revision.
func checkEvents(m meta) func(*readTx) error {
	return func(t *readTx) error {
		next := m.compacted + 1
		err := t.tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			r, err := parseRev(k)
			if err != nil {
				return fmt.Errorf("%w: events key: %w", errCorrupt, err)
			}
			if r != next {
				return fmt.Errorf("%w: event log has revision %d, want %d (compacted %d, revision %d)", errCorrupt, r, next, m.compacted, m.revision)
			}
			c, err := decode[storage.Change](nil, "change", v)
			if err != nil {
				return err
			}
			if c.Revision != r || len(c.Events) == 0 {
				return fmt.Errorf("%w: change under revision %d has revision %d and %d events", errCorrupt, r, c.Revision, len(c.Events))
			}
			next++
			return nil
		})
		if err != nil {
			return err
		}
		if next != m.revision+1 {
			return fmt.Errorf("%w: event log ends at %d, revision is %d", errCorrupt, next-1, m.revision)
		}
		return nil
	}
}

// checkUTC verifies that the top-level times of a record were stored in UTC
// (the codec converts them; a non-UTC time means something bypassed it).
func checkUTC(kind string, key []byte, rec any) error {
	var times []time.Time
	switch r := rec.(type) {
	case storage.Session:
		times = []time.Time{r.CreateTime, r.ExpireTime, r.RefreshTime, r.AccessExpireTime, r.RevokeTime}
	case storage.Ban:
		times = []time.Time{r.CreateTime, r.ExpireTime, r.LiftTime}
	case storage.AuditRecord:
		times = []time.Time{r.Time}
	case storage.APIKey:
		times = []time.Time{r.CreateTime, r.ExpireTime, r.RevokeTime}
	case storage.SigningKey:
		times = []time.Time{r.CreateTime, r.RetireTime, r.VerifyUntil}
	case storage.RefreshToken:
		times = []time.Time{r.ExpireTime}
	}
	for _, tm := range times {
		if tm.Location() != time.UTC {
			return fmt.Errorf("%w: %s %q has a time in %s, want UTC", errCorrupt, kind, key, tm.Location())
		}
	}
	return nil
}
