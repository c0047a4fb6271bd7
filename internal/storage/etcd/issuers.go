package etcd

import (
	"encoding/hex"
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// bucketIssuers: <prefix>/issuers/<hex of the issuer URL> -> JSON
// storage.Issuer. The URL is hex-encoded so that its "/" and any other
// byte stay out of the key's structure; hex keeps the URLs' byte order.
const bucketIssuers = "issuers"

func (k keyspace) issuer(url string) string {
	return k.record(bucketIssuers, hex.EncodeToString([]byte(url)))
}

func (t *txn) Issuer(url string) (storage.Issuer, error) {
	i, ok, err := getRecord[storage.Issuer](t, bucketIssuers, "issuer", t.k.issuer(url))
	if err == nil && !ok {
		err = notFound("issuer", url)
	}
	return i, err
}

func (t *txn) Issuers() iter.Seq2[storage.Issuer, error] {
	return scanRecords(t, bucketIssuers, "issuer", "", func(*storage.Issuer) bool { return true })
}

func (t *txn) PutIssuer(i storage.Issuer) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := i.CheckKeys(); err != nil {
		return err
	}
	return t.put("issuer", t.k.issuer(i.URL), i.UTC())
}

// DeleteIssuer removes an issuer; an absent one is not an error.
func (t *txn) DeleteIssuer(url string) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	t.del(bucketIssuers, t.k.issuer(url))
	return nil
}

// bucketExternalRevocations: <prefix>/extrevoked/<hex of the key> -> JSON
// storage.ExternalRevocation (hex: the key holds NUL bytes).
const bucketExternalRevocations = "extrevoked"

func (k keyspace) externalRevocation(key string) string {
	return k.record(bucketExternalRevocations, hex.EncodeToString([]byte(key)))
}

func (t *txn) ExternalRevocation(key string) (storage.ExternalRevocation, error) {
	r, ok, err := getRecord[storage.ExternalRevocation](t, bucketExternalRevocations, "external revocation", t.k.externalRevocation(key))
	if err == nil && !ok {
		err = notFound("external revocation", key)
	}
	return r, err
}

func (t *txn) ExternalRevocations() iter.Seq2[storage.ExternalRevocation, error] {
	return scanRecords(t, bucketExternalRevocations, "external revocation", "", func(*storage.ExternalRevocation) bool { return true })
}

func (t *txn) PutExternalRevocation(r storage.ExternalRevocation) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := r.CheckKeys(); err != nil {
		return err
	}
	return t.put("external revocation", t.k.externalRevocation(r.Key()), r.UTC())
}

// DeleteExternalRevocation removes a revocation; an absent one is not an
// error.
func (t *txn) DeleteExternalRevocation(key string) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	t.del(bucketExternalRevocations, t.k.externalRevocation(key))
	return nil
}
