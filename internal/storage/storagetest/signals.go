package storagetest

import (
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The records of shared signals: three tables of plain keyed records
// (streams, transmitters, received SETs) and the events of their kinds.

func normSignalStream(s storage.SignalStream) storage.SignalStream {
	for _, t := range []*time.Time{&s.PushLeaseUntil, &s.OutageSince, &s.LastDeliveryTime, &s.CreateTime, &s.UpdateTime} {
		normTime(t)
	}
	s.Audience = normStrings(s.Audience)
	s.EventsRequested = normStrings(s.EventsRequested)
	s.EventsDelivered = normStrings(s.EventsDelivered)
	s.Subjects = normStrings(s.Subjects)
	s.Acked = normStrings(s.Acked)
	return s
}

func normSignalTransmitter(x storage.SignalTransmitter) storage.SignalTransmitter {
	for _, t := range []*time.Time{&x.CreateTime, &x.UpdateTime, &x.LastSuccessTime, &x.LastErrorTime} {
		normTime(t)
	}
	x.PushSecretHash = normBytes(x.PushSecretHash)
	if len(x.Keys) == 0 {
		x.Keys = nil
	}
	for k := range x.Keys {
		x.Keys[k].Algorithms = normStrings(x.Keys[k].Algorithms)
		x.Keys[k].PublicKey = normBytes(x.Keys[k].PublicKey)
	}
	return x
}

func normReceivedSET(r storage.ReceivedSET) storage.ReceivedSET {
	normTime(&r.ReceiveTime)
	normTime(&r.KeepUntil)
	return r
}

func signalStreamID(s storage.SignalStream) string           { return s.ID }
func signalTransmitterID(x storage.SignalTransmitter) string { return x.ID }
func receivedSETKey(r storage.ReceivedSET) string            { return r.Key() }

// listAll reads a whole table in one View.
func listAll[T any](t *testing.T, s storage.Store, seq func(storage.ReadTx) iter.Seq2[T, error]) []T {
	t.Helper()
	var got []T
	view(t, s, func(tx storage.ReadTx) error {
		var err error
		got, err = collect(seq(tx))
		return err
	})
	return got
}

// wantUTC fails unless every time is in UTC (the backends store UTC, so
// a time written in another zone comes back as the same instant in UTC).
func wantUTC(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("%s: time %d (%v) is in %s, want UTC", what, i, tm, tm.Location())
		}
	}
}

// testSignalStreams: streams are stored by ID, listed in ID order with
// every field (the delivery position and acknowledgements included),
// replaced in place, deleted idempotently; one without an ID is refused.
func testSignalStreams(t *testing.T, s storage.Store) {
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.SignalStream("sst_a")
		wantNotFound(t, "SignalStream on an empty store", err)
		got, err := collect(tx.SignalStreams())
		if err != nil || len(got) != 0 {
			t.Errorf("SignalStreams on an empty store: %v, %v", got, err)
		}
		return nil
	})
	zone := time.FixedZone("UTC-3", -3*3600)
	a := storage.SignalStream{
		ID: "sst_b", Owner: "key_1", OwnerName: "receiver-app", Audience: []string{"https://rp.example", "rp2"},
		EventsRequested: []string{"https://schemas.openid.net/secevent/caep/event-type/session-revoked", "urn:x:unsupported"},
		EventsDelivered: []string{"https://schemas.openid.net/secevent/caep/event-type/session-revoked"},
		Description:     "push to rp", DeliveryMethod: "urn:ietf:rfc:8935", EndpointURL: "https://rp.example/ssf/push",
		AuthorizationHeader: "Bearer s3cret", Algorithm: "RS256", Status: "paused", StatusReason: "outage over 1h",
		Subjects: []string{`{"format":"opaque","id":"u1"}`}, Position: 42, Acked: []string{"sst_b-44-0", "sst_b-45-1"},
		MaxInFlight: 64, Pusher: "replica-1", PushLeaseUntil: at(2 * time.Minute).In(zone),
		OutageSince: at(time.Minute).In(zone), LastDeliveryTime: at(30 * time.Second), LastError: "503 Service Unavailable",
		CreateTime: at(0).In(zone), UpdateTime: at(time.Minute),
	}
	b := storage.SignalStream{ID: "sst_a", Owner: "key_2", DeliveryMethod: "urn:ietf:rfc:8936",
		EndpointURL: "https://authority.example/ssf/poll/sst_a", Algorithm: "EdDSA", Status: "enabled", CreateTime: at(0), UpdateTime: at(0)}
	c := b
	c.ID = "sst_c"
	update(t, s, func(tx storage.Tx) error {
		for _, st := range []storage.SignalStream{a, b, c} {
			if err := tx.PutSignalStream(st); err != nil {
				return err
			}
		}
		return nil
	})
	list := func() []storage.SignalStream { return listAll(t, s, storage.ReadTx.SignalStreams) }
	sameList(t, "SignalStreams()", list(), []storage.SignalStream{b, a, c}, normSignalStream, signalStreamID)
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.SignalStream(a.ID)
		if err != nil {
			t.Fatalf("SignalStream(%s): %v", a.ID, err)
		}
		same(t, "SignalStream", got, a, normSignalStream)
		wantUTC(t, "SignalStream", got.PushLeaseUntil, got.OutageSince, got.CreateTime, got.LastDeliveryTime, got.UpdateTime)
		return nil
	})

	// A worker moves the position on (the acknowledgements become
	// contiguous); the stream is deleted, twice, and an absent one too.
	a2 := a
	a2.Position, a2.Acked, a2.Status, a2.StatusReason, a2.OutageSince = 45, nil, "enabled", "", time.Time{}
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutSignalStream(a2); err != nil {
			return err
		}
		for _, id := range []string{c.ID, c.ID, "sst_never"} {
			if err := tx.DeleteSignalStream(id); err != nil {
				return err
			}
		}
		return nil
	})
	sameList(t, "SignalStreams() after replace and delete", list(), []storage.SignalStream{b, a2}, normSignalStream, signalStreamID)
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.SignalStream(c.ID)
		wantNotFound(t, "deleted SignalStream", err)
		return nil
	})
	for name, st := range map[string]storage.SignalStream{"without ID": {Owner: "key_1"}, "with NUL in ID": {ID: "a\x00b"}} {
		if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutSignalStream(st) }); !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("PutSignalStream %s: %v, want ErrInvalidRecord", name, err)
		}
	}
}

// testSignalTransmitters: transmitters are stored by ID with their keys,
// secrets and status, listed in ID order, replaced, deleted idempotently.
func testSignalTransmitters(t *testing.T, s storage.Store) {
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.SignalTransmitter("stx_a")
		wantNotFound(t, "SignalTransmitter on an empty store", err)
		got, err := collect(tx.SignalTransmitters())
		if err != nil || len(got) != 0 {
			t.Errorf("SignalTransmitters on an empty store: %v, %v", got, err)
		}
		return nil
	})
	a := storage.SignalTransmitter{
		ID: "stx_b", ConfigURL: "https://tx.example/.well-known/ssf-configuration", Issuer: "https://tx.example",
		JWKSURI: "https://tx.example/jwks", Audience: "https://authority.example", DeliveryMethod: "urn:ietf:rfc:8935",
		StreamID: "f67e39a0a4d34d56b3aa1bc4cff0069f", ConfigurationEndpoint: "https://tx.example/ssf/stream",
		BearerToken: "tok", PushSecretHash: []byte{0x00, 0x01, 0xfe, 0xff}, TenantID: "*", BanDuration: 36 * time.Hour,
		Description: "idp", Keys: []storage.IssuerKey{{ID: "k1", Algorithms: []string{"RS256"}, PublicKey: []byte{0x30, 0x82}}},
		CreateTime: at(0).In(time.FixedZone("UTC+9", 9*3600)), UpdateTime: at(time.Second), CreatedBy: "admin",
		LastSuccessTime: at(time.Minute), LastErrorTime: at(2 * time.Minute), LastError: "jwks: 500",
	}
	b := storage.SignalTransmitter{ID: "stx_a", Issuer: "https://other.example", DeliveryMethod: "urn:ietf:rfc:8936",
		PollURL: "https://other.example/poll/1", TenantID: "acme", CreateTime: at(0), UpdateTime: at(0)}
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutSignalTransmitter(a); err != nil {
			return err
		}
		return tx.PutSignalTransmitter(b)
	})
	list := func() []storage.SignalTransmitter { return listAll(t, s, storage.ReadTx.SignalTransmitters) }
	sameList(t, "SignalTransmitters()", list(), []storage.SignalTransmitter{b, a}, normSignalTransmitter, signalTransmitterID)
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.SignalTransmitter(a.ID)
		if err != nil {
			t.Fatalf("SignalTransmitter(%s): %v", a.ID, err)
		}
		same(t, "SignalTransmitter", got, a, normSignalTransmitter)
		wantUTC(t, "SignalTransmitter", got.CreateTime, got.UpdateTime, got.LastSuccessTime, got.LastErrorTime)
		return nil
	})
	a2 := a
	a2.LastError, a2.LastErrorTime, a2.Keys = "", time.Time{}, nil
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutSignalTransmitter(a2); err != nil {
			return err
		}
		for _, id := range []string{b.ID, b.ID, "stx_never"} {
			if err := tx.DeleteSignalTransmitter(id); err != nil {
				return err
			}
		}
		return nil
	})
	sameList(t, "SignalTransmitters() after replace and delete", list(), []storage.SignalTransmitter{a2}, normSignalTransmitter, signalTransmitterID)
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.SignalTransmitter(b.ID)
		wantNotFound(t, "deleted SignalTransmitter", err)
		return nil
	})
	if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutSignalTransmitter(storage.SignalTransmitter{Issuer: "x"}) }); !errors.Is(err, storage.ErrInvalidRecord) {
		t.Errorf("PutSignalTransmitter without ID: %v, want ErrInvalidRecord", err)
	}
}

// testReceivedSETs: marks are keyed by transmitter and jti (any bytes but
// NUL, "/" included: a jti is the transmitter's choice), so one
// transmitter's jti never collides with another's, listed by key (by
// transmitter, then jti), deleted idempotently.
func testReceivedSETs(t *testing.T, s storage.Store) {
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.ReceivedSET(storage.ReceivedSETKey("stx_a", "j1"))
		wantNotFound(t, "ReceivedSET on an empty store", err)
		got, err := collect(tx.ReceivedSETs())
		if err != nil || len(got) != 0 {
			t.Errorf("ReceivedSETs on an empty store: %v, %v", got, err)
		}
		return nil
	})
	const revoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	mk := func(tx, jti string) storage.ReceivedSET {
		return storage.ReceivedSET{Transmitter: tx, JTI: jti, Event: revoked, ReceiveTime: at(time.Second), KeepUntil: at(24 * time.Hour)}
	}
	// "stx_a"+NUL+"b/c" sorts before "stx_ab"+NUL+"c": the separator keeps
	// the transmitter a field of its own.
	r1, r2, r3 := mk("stx_ab", "c"), mk("stx_a", "b/c"), mk("stx_a", "a b ü")
	r3.Event = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	update(t, s, func(tx storage.Tx) error {
		for _, r := range []storage.ReceivedSET{r1, r2, r3} {
			if err := tx.PutReceivedSET(r); err != nil {
				return err
			}
		}
		return nil
	})
	list := func() []storage.ReceivedSET { return listAll(t, s, storage.ReadTx.ReceivedSETs) }
	sameList(t, "ReceivedSETs()", list(), []storage.ReceivedSET{r3, r2, r1}, normReceivedSET, receivedSETKey)
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.ReceivedSET(storage.ReceivedSETKey("stx_a", "b/c"))
		if err != nil {
			t.Fatalf("ReceivedSET: %v", err)
		}
		same(t, "ReceivedSET", got, r2, normReceivedSET)
		wantUTC(t, "ReceivedSET", got.ReceiveTime, got.KeepUntil)
		_, err = tx.ReceivedSET(storage.ReceivedSETKey("stx_a", "c"))
		wantNotFound(t, "ReceivedSET of another transmitter's jti", err)
		return nil
	})
	update(t, s, func(tx storage.Tx) error {
		for _, key := range []string{r2.Key(), r2.Key(), storage.ReceivedSETKey("stx_z", "never")} {
			if err := tx.DeleteReceivedSET(key); err != nil {
				return err
			}
		}
		return nil
	})
	sameList(t, "ReceivedSETs() after delete", list(), []storage.ReceivedSET{r3, r1}, normReceivedSET, receivedSETKey)
	for name, r := range map[string]storage.ReceivedSET{
		"without jti":         mk("stx_a", ""),
		"without transmitter": mk("", "j"),
		"NUL in transmitter":  mk("stx\x00a", "j"),
		"NUL in jti":          mk("stx_a", "j\x00"),
	} {
		if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutReceivedSET(r) }); !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("PutReceivedSET %s: %v, want ErrInvalidRecord", name, err)
		}
	}
}

// testSignalEvents: the events of shared signals reach a watcher with
// their payloads (a SignalNote; ban.expired's Ban with ExpiryAnnounced),
// a ban's ExpiryAnnounced round-trips through the table, and an event
// whose payload does not match its kind is refused.
func testSignalEvents(t *testing.T, s storage.Store) {
	ban := newBan("ban_exp", "t1", storage.SubjectUser, "alice")
	ban.ExpireTime = at(time.Hour)
	// Before the announcement: zero, and it stays zero through the store.
	update(t, s, func(tx storage.Tx) error { return tx.PutBan(ban) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Ban(ban.ID)
		if err != nil {
			t.Fatalf("Ban: %v", err)
		}
		if !got.ExpiryAnnounced.IsZero() {
			t.Errorf("ExpiryAnnounced of a ban never announced: %v, want zero", got.ExpiryAnnounced)
		}
		return nil
	})
	announced := ban
	announced.ExpiryAnnounced = at(time.Hour + 1500*time.Millisecond).In(time.FixedZone("UTC+1", 3600))
	events := []storage.Event{
		{Kind: storage.EventBanExpired, Time: at(time.Hour + time.Second), Ban: &announced},
		{Kind: storage.EventSignalStreamUpdated, Time: at(0), Signal: &storage.SignalNote{StreamID: "sst_1"}},
		{Kind: storage.EventSignalStreamDeleted, Time: at(0), Signal: &storage.SignalNote{StreamID: "sst_2"}},
		{Kind: storage.EventSignalVerification, Time: at(0), Signal: &storage.SignalNote{StreamID: "sst_1", State: "c3RhdGU/+="}},
		{Kind: storage.EventSignalTransmitterUpdated, Time: at(0), Signal: &storage.SignalNote{TransmitterID: "stx_1"}},
		{Kind: storage.EventSignalTransmitterDeleted, Time: at(0), Signal: &storage.SignalNote{TransmitterID: "stx_2"}},
	}
	before := currentRevision(t, s)
	rev := update(t, s, func(tx storage.Tx) error {
		if err := tx.PutBan(announced); err != nil {
			return err
		}
		return emitAll(tx, events...)
	})
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Ban(ban.ID)
		if err != nil {
			t.Fatalf("Ban: %v", err)
		}
		same(t, "announced Ban", got, announced, normBan)
		wantUTC(t, "announced Ban", got.ExpiryAnnounced)
		// Listings decode bans their own way (the fast decoder): the
		// field must survive that path too.
		bans, err := collect(tx.Bans(storage.BanQuery{TenantID: "t1"}))
		if err != nil || len(bans) != 1 {
			t.Fatalf("Bans: %v, %v", bans, err)
		}
		same(t, "listed announced Ban", bans[0], announced, normBan)
		return nil
	})
	w := watch(t, s, before)
	ch := next(t, w)
	same(t, "change of signal events", ch, storage.Change{Revision: rev, Events: events}, normChange)

	// The payload must be the one the kind names.
	for name, e := range map[string]storage.Event{
		"ban.expired with a note":       {Kind: storage.EventBanExpired, Time: at(0), Signal: &storage.SignalNote{StreamID: "x"}},
		"verification with a ban":       {Kind: storage.EventSignalVerification, Time: at(0), Ban: &ban},
		"stream update with no payload": {Kind: storage.EventSignalStreamUpdated, Time: at(0)},
		"note and ban":                  {Kind: storage.EventSignalStreamDeleted, Time: at(0), Ban: &ban, Signal: &storage.SignalNote{StreamID: "x"}},
	} {
		if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.Emit(e) }); !errors.Is(err, storage.ErrInvalidEvent) {
			t.Errorf("Emit %s: %v, want ErrInvalidEvent", name, err)
		}
	}
}
