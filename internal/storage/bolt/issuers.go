package bolt

import (
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The reads of external issuers and their revocations; their writes are
// storage.Writes.

func (t *readTx) Issuer(url string) (storage.Issuer, error) {
	return storage.Get[storage.Issuer](t, storage.TableIssuers, url)
}

func (t *readTx) Issuers() iter.Seq2[storage.Issuer, error] {
	return scan(t, scanSpec{primary: bucketIssuers, kind: "issuer"}, func(*storage.Issuer) bool { return true })
}

func (t *readTx) ExternalRevocation(key string) (storage.ExternalRevocation, error) {
	return storage.Get[storage.ExternalRevocation](t, storage.TableExternalRevocations, key)
}

func (t *readTx) ExternalRevocations() iter.Seq2[storage.ExternalRevocation, error] {
	return scan(t, scanSpec{primary: bucketExternalRevocations, kind: "external revocation"}, func(*storage.ExternalRevocation) bool { return true })
}
