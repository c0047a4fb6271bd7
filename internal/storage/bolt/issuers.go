package bolt

import (
	"fmt"
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// bucketIssuers: issuer URL -> JSON storage.Issuer. Unlike the buckets of
// schema.go it is created by the first PutIssuer, not by Open, and a file
// without it simply has no issuer: files written before external issuers
// existed open unchanged, without a schema version bump.
var bucketIssuers = []byte("issuers")

func (t *readTx) Issuer(url string) (storage.Issuer, error) {
	if err := t.usable(); err != nil {
		return storage.Issuer{}, err
	}
	if t.tx.Bucket(bucketIssuers) == nil {
		return storage.Issuer{}, notFound("issuer", url)
	}
	i, ok, err := get[storage.Issuer](t, bucketIssuers, "issuer", []byte(url))
	if err == nil && !ok {
		err = notFound("issuer", url)
	}
	return i, err
}

func (t *readTx) Issuers() iter.Seq2[storage.Issuer, error] {
	if t.usable() == nil && t.tx.Bucket(bucketIssuers) == nil {
		return func(func(storage.Issuer, error) bool) {}
	}
	return scan(t, scanSpec{primary: bucketIssuers, kind: "issuer"}, func(*storage.Issuer) bool { return true })
}

func (t *writeTx) PutIssuer(i storage.Issuer) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := i.CheckKeys(); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucketIfNotExists(bucketIssuers); err != nil {
		return fmt.Errorf("storage/bolt: create bucket %s: %w", bucketIssuers, err)
	}
	return t.put(bucketIssuers, "issuer", []byte(i.URL), i.UTC())
}

// DeleteIssuer removes an issuer; an absent one is not an error.
func (t *writeTx) DeleteIssuer(url string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.tx.Bucket(bucketIssuers) == nil {
		return nil
	}
	return t.del(bucketIssuers, "issuer", []byte(url))
}

// bucketExternalRevocations: ExternalRevocation.Key() -> JSON
// storage.ExternalRevocation; created by the first write, like
// bucketIssuers.
var bucketExternalRevocations = []byte("external_revocations")

func (t *readTx) ExternalRevocation(key string) (storage.ExternalRevocation, error) {
	if err := t.usable(); err != nil {
		return storage.ExternalRevocation{}, err
	}
	if t.tx.Bucket(bucketExternalRevocations) == nil {
		return storage.ExternalRevocation{}, notFound("external revocation", key)
	}
	r, ok, err := get[storage.ExternalRevocation](t, bucketExternalRevocations, "external revocation", []byte(key))
	if err == nil && !ok {
		err = notFound("external revocation", key)
	}
	return r, err
}

func (t *readTx) ExternalRevocations() iter.Seq2[storage.ExternalRevocation, error] {
	if t.usable() == nil && t.tx.Bucket(bucketExternalRevocations) == nil {
		return func(func(storage.ExternalRevocation, error) bool) {}
	}
	return scan(t, scanSpec{primary: bucketExternalRevocations, kind: "external revocation"}, func(*storage.ExternalRevocation) bool { return true })
}

func (t *writeTx) PutExternalRevocation(r storage.ExternalRevocation) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := r.CheckKeys(); err != nil {
		return err
	}
	if _, err := t.tx.CreateBucketIfNotExists(bucketExternalRevocations); err != nil {
		return fmt.Errorf("storage/bolt: create bucket %s: %w", bucketExternalRevocations, err)
	}
	return t.put(bucketExternalRevocations, "external revocation", []byte(r.Key()), r.UTC())
}

// DeleteExternalRevocation removes a revocation; an absent one is not an
// error.
func (t *writeTx) DeleteExternalRevocation(key string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.tx.Bucket(bucketExternalRevocations) == nil {
		return nil
	}
	return t.del(bucketExternalRevocations, "external revocation", []byte(key))
}
