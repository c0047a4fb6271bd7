package etcd

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// errCorrupt marks a value under the prefix that breaks the layout.
var errCorrupt = errors.New("storage/etcd: corrupt store")

// sep separates the parts of an index key. Indexed fields must not contain
// it, which is what keeps "t1" from running into "t10".
const sep = "\x00"

// Buckets: every record kind lives under <prefix>/<bucket>/. Index buckets
// hold keys of the form <parts joined by sep><sep><id> with empty values.
const (
	bucketSessions         = "sessions"
	bucketRefreshTokens    = "refresh"
	bucketBans             = "bans"
	bucketAudit            = "audit"
	bucketAPIKeys          = "apikeys"
	bucketSigningKeys      = "signingkeys"
	bucketSessionsByTenant = "idx/sessions_by_tenant"
	bucketSessionsByUser   = "idx/sessions_by_user"
	bucketSessionsByDevice = "idx/sessions_by_device"
	bucketBansByTenant     = "idx/bans_by_tenant"
	// bucketRefreshBySession: <session ID>\x00<hex of the hash>; sweeping
	// finds an expired session's tokens (every generation) through it.
	bucketRefreshBySession = "idx/refresh_by_session"
	bucketBansBySubject    = "idx/bans_by_subject"
	// bucketAuditBySubject: <subject>\x00<audit ID>; bucketAuditByActor:
	// <actor>\x00<audit ID>; only records with the field set have one.
	bucketAuditBySubject = "idx/audit_by_subject"
	bucketAuditByActor   = "idx/audit_by_actor"
	// bucketPresence holds each replica's storage.Presence value, under a
	// lease of the replica's store (presence.go); no record, no event.
	bucketPresence = "presence"
)

// keyspace names every key of one store. root is the prefix followed by "/".
//
//	<prefix>/meta/store                 schema version and the store's nonce
//	<prefix>/meta/compacted             the log's compaction mark (decimal)
//	<prefix>/log                        the last change; its history is the event log
//	<prefix>/guard/<bucket>             rewritten by every delete in <bucket>
//	<prefix>/<bucket>/<id>              records (refresh tokens by hex hash)
//	<prefix>/idx/<index>/<parts>\x00<id> index entries
//	<prefix>/presence/<id>              a replica's presence value, under its lease
type keyspace struct {
	root          string
	metaStore     string
	metaCompacted string
	log           string
}

func newKeyspace(prefix string) keyspace {
	root := prefix + "/"
	return keyspace{
		root:          root,
		metaStore:     root + "meta/store",
		metaCompacted: root + "meta/compacted",
		log:           root + "log",
	}
}

// bucket returns the key prefix of a bucket.
func (k keyspace) bucket(b string) string { return k.root + b + "/" }

// record returns the key of a record in a bucket.
func (k keyspace) record(b, id string) string { return k.root + b + "/" + id }

// presence returns the key of a replica's presence value.
func (k keyspace) presence(id string) string { return k.record(bucketPresence, id) }

// guard returns the guard key of a bucket.
func (k keyspace) guard(b string) string { return k.root + "guard/" + b }

func (k keyspace) refresh(hash []byte) string {
	return k.record(bucketRefreshTokens, hex.EncodeToString(hash))
}

// indexPrefix returns the prefix of the index keys matching parts under
// the index bucket (storage.IndexPrefix).
func (k keyspace) indexPrefix(b string, parts ...string) string {
	return k.bucket(b) + storage.IndexPrefix(parts...)
}

// prefixEnd is the end (exclusive) of the range of keys starting with p.
func prefixEnd(p string) string { return clientv3.GetPrefixRangeEnd(p) }

// normalizePrefix returns the prefix without trailing slashes; "" becomes
// DefaultPrefix.
func normalizePrefix(p string) (string, error) {
	p = cmp.Or(strings.TrimRight(p, "/"), DefaultPrefix)
	if strings.Contains(p, sep) {
		return "", fmt.Errorf("storage/etcd: prefix %q contains a NUL byte", p)
	}
	return p, nil
}
