package etcd

import (
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The reads of external issuers and their revocations; their writes are
// storage.Writes (keys: recordKey).

const (
	// bucketIssuers: <prefix>/issuers/<hex of the issuer URL> -> JSON
	// storage.Issuer.
	bucketIssuers = "issuers"
	// bucketExternalRevocations: <prefix>/extrevoked/<hex of the key> ->
	// JSON storage.ExternalRevocation.
	bucketExternalRevocations = "extrevoked"
)

func (t *txn) Issuer(url string) (storage.Issuer, error) {
	return storage.Get[storage.Issuer](t, storage.TableIssuers, url)
}

func (t *txn) Issuers() iter.Seq2[storage.Issuer, error] {
	return scanRecords(t, bucketIssuers, "issuer", "", func(*storage.Issuer) bool { return true })
}

func (t *txn) ExternalRevocation(key string) (storage.ExternalRevocation, error) {
	return storage.Get[storage.ExternalRevocation](t, storage.TableExternalRevocations, key)
}

func (t *txn) ExternalRevocations() iter.Seq2[storage.ExternalRevocation, error] {
	return scanRecords(t, bucketExternalRevocations, "external revocation", "", func(*storage.ExternalRevocation) bool { return true })
}
