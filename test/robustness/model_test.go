package robustness

import (
	"testing"
	"time"
)

// rec is one operation of a hand-written history.
type rec struct {
	client    int
	call, ret int64
	in        Input
	out       Output
}

func history(rs ...rec) []Op {
	out := make([]Op, len(rs))
	for i, r := range rs {
		ret := r.ret
		if r.out.Result == Unknown {
			ret = Never
		}
		out[i] = Op{Client: r.client, In: r.in, Out: r.out, Call: r.call, Return: ret}
	}
	return out
}

func create(u, tag string) Input { return Input{Kind: CreateBan, User: u, Tag: tag} }
func lift(u, id string) Input    { return Input{Kind: LiftBan, User: u, BanID: id} }
func check(u string) Input       { return Input{Kind: CheckBan, User: u} }
func login(u string) Input       { return Input{Kind: CreateSession, User: u} }
func refresh(u, s string, g int) Input {
	return Input{Kind: RefreshSession, User: u, Session: s, Gen: g}
}
func revoke(u, s string) Input { return Input{Kind: RevokeSession, User: u, Session: s} }
func verify(u, s string) Input { return Input{Kind: VerifySession, User: u, Session: s} }

func ok() Output                 { return Output{Result: OK} }
func res(r Result) Output        { return Output{Result: r} }
func banOut(id string) Output    { return Output{Result: OK, BanID: id} }
func checkOut(ids string) Output { return Output{Result: OK, BanIDs: ids} }
func sessOut(id string) Output   { return Output{Result: OK, Session: id} }

func mustBe(t *testing.T, want string, ops []Op) {
	t.Helper()
	got := CheckLinearizable(ops, time.Minute)
	if string(got.Result) != want {
		t.Fatalf("linearizability %s, want %s", got.Result, want)
	}
}

func TestModelBanLifecycle(t *testing.T) {
	mustBe(t, "Ok", history(
		rec{0, 1, 2, create("u", "t1"), banOut("b1")},
		rec{0, 3, 4, check("u"), checkOut("b1")},
		rec{1, 3, 6, create("u", "t2"), banOut("b2")},
		rec{0, 7, 8, check("u"), checkOut("b1,b2")},
		rec{0, 9, 10, lift("u", "b1"), ok()},
		rec{1, 9, 12, lift("u", "b1"), res(AlreadyLifted)}, // concurrent lifts: one wins
		rec{0, 13, 14, check("u"), checkOut("b2")},
	))
}

// A concurrent CheckBan may see the ban or not; a later one must.
func TestModelConcurrentCheck(t *testing.T) {
	mustBe(t, "Ok", history(
		rec{0, 1, 5, create("u", "t1"), banOut("b1")},
		rec{1, 2, 3, check("u"), checkOut("")},
		rec{2, 2, 4, check("u"), checkOut("b1")},
	))
	mustBe(t, "Illegal", history(
		rec{0, 1, 5, create("u", "t1"), banOut("b1")},
		rec{1, 2, 3, check("u"), checkOut("b1")},
		rec{2, 4, 6, check("u"), checkOut("")}, // saw it, then not: stale read
	))
}

// The deliberately broken history of the issue: an acknowledged ban that
// a later read does not see (lost by a crash, or a stale replica).
func TestModelLostAcknowledgedBan(t *testing.T) {
	mustBe(t, "Illegal", history(
		rec{0, 1, 2, create("u", "t1"), banOut("b1")},
		rec{1, 3, 4, check("u"), checkOut("")},
	))
	// Nor may a banned user log in after the ban was acknowledged.
	mustBe(t, "Illegal", history(
		rec{0, 1, 2, create("u", "t1"), banOut("b1")},
		rec{1, 3, 4, login("u"), sessOut("s1")},
	))
}

// A CreateBan without an answer may have happened at any point after its
// call (Resolve gave it the ban's ID, found in the store at the end).
func TestModelUnknownCreate(t *testing.T) {
	// Not in the store at the end: it did not happen.
	mustBe(t, "Ok", Resolve(history(
		rec{0, 1, 0, create("u", "t1"), res(Unknown)},
		rec{1, 3, 4, check("u"), checkOut("")},
	), nil))
	ops := Resolve(history(
		rec{0, 1, 0, create("u", "t1"), res(Unknown)},
		rec{1, 3, 4, check("u"), checkOut("")},
		rec{1, 5, 6, check("u"), checkOut("b1")},
	), map[string]string{"t1": "b1"})
	mustBe(t, "Ok", ops)
	// Once seen, never unseen.
	ops = Resolve(history(
		rec{0, 1, 0, create("u", "t1"), res(Unknown)},
		rec{1, 3, 4, check("u"), checkOut("b1")},
		rec{1, 5, 6, check("u"), checkOut("")},
	), map[string]string{"t1": "b1"})
	mustBe(t, "Illegal", ops)
}

func TestModelRefreshFamily(t *testing.T) {
	// Rotation chain, then a copy of generation 1 is presented: theft,
	// the family is revoked, and the current token no longer works.
	mustBe(t, "Ok", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 4, refresh("u", "s1", 0), ok()},
		rec{0, 5, 6, refresh("u", "s1", 1), ok()},
		rec{1, 7, 8, refresh("u", "s1", 1), res(Theft)},
		rec{0, 9, 10, refresh("u", "s1", 2), res(Revoked)},
		rec{0, 11, 12, verify("u", "s1"), res(Revoked)},
	))
	// Two racing presenters of one token: exactly one rotation succeeds.
	mustBe(t, "Ok", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 6, refresh("u", "s1", 0), ok()},
		rec{1, 3, 7, refresh("u", "s1", 0), res(Theft)},
	))
}

// Broken: one token rotated twice (two replicas both won the race).
func TestModelDoubleRotation(t *testing.T) {
	mustBe(t, "Illegal", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 6, refresh("u", "s1", 0), ok()},
		rec{1, 3, 7, refresh("u", "s1", 0), ok()},
	))
	// Broken: a reuse that did not revoke the family.
	mustBe(t, "Illegal", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 4, refresh("u", "s1", 0), ok()},
		rec{1, 5, 6, refresh("u", "s1", 0), res(Theft)},
		rec{0, 7, 8, refresh("u", "s1", 1), ok()},
	))
}

// A refresh without an answer may have rotated the token: presenting the
// old one afterwards is then reuse.
func TestModelUnknownRefresh(t *testing.T) {
	mustBe(t, "Ok", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 0, refresh("u", "s1", 0), res(Unknown)},
		rec{1, 5, 6, refresh("u", "s1", 0), res(Theft)},
	))
	mustBe(t, "Ok", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 0, refresh("u", "s1", 0), res(Unknown)},
		rec{1, 5, 6, refresh("u", "s1", 0), ok()},
	))
}

// A ban revokes the user's sessions in the same write: a refresh after it
// is refused as revoked, a verify as banned; after the lift the session
// stays revoked and a new login works.
func TestModelBanRevokesSessions(t *testing.T) {
	mustBe(t, "Ok", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 4, create("u", "t1"), banOut("b1")},
		rec{0, 5, 6, refresh("u", "s1", 0), res(Revoked)},
		rec{0, 7, 8, verify("u", "s1"), res(Banned)},
		rec{0, 9, 10, login("u"), res(Banned)},
		rec{0, 11, 12, lift("u", "b1"), ok()},
		rec{0, 13, 14, verify("u", "s1"), res(Revoked)},
		rec{0, 15, 16, login("u"), sessOut("s2")},
		rec{0, 17, 18, refresh("u", "s2", 0), ok()},
		rec{0, 19, 20, revoke("u", "s2"), ok()},
		rec{0, 21, 22, revoke("u", "s2"), res(AlreadyRevoked)},
	))
	// Broken: a ban acknowledged, and a session of the user still
	// refreshes (the ban and its revocations were not one write).
	mustBe(t, "Illegal", history(
		rec{0, 1, 2, login("u"), sessOut("s1")},
		rec{0, 3, 4, create("u", "t1"), banOut("b1")},
		rec{0, 5, 6, lift("u", "b1"), ok()},
		rec{0, 7, 8, refresh("u", "s1", 0), ok()},
	))
}

// Users are independent partitions: a violation in one is found among
// many good ones.
func TestModelPartitions(t *testing.T) {
	var rs []rec
	for i := range 50 {
		u := string(rune('a'+i%26)) + string(rune('a'+i/26))
		base := int64(i * 10)
		rs = append(rs,
			rec{i, base + 1, base + 2, create(u, "t"+u), banOut("b" + u)},
			rec{i, base + 3, base + 4, check(u), checkOut("b" + u)})
	}
	mustBe(t, "Ok", history(rs...))
	rs[len(rs)-1].out = checkOut("")
	mustBe(t, "Illegal", history(rs...))
}

func TestLostWrites(t *testing.T) {
	ops := history(
		rec{1, 0, 0, login("u"), sessOut("s0")},
		rec{0, 1, 2, create("u", "t1"), banOut("b1")},
		rec{0, 3, 4, create("v", "t2"), banOut("b2")},
		rec{0, 5, 6, lift("v", "b2"), ok()},
		rec{0, 7, 8, login("w"), sessOut("s1")},
		rec{0, 9, 10, revoke("w", "s1"), ok()},
		rec{0, 11, 0, create("x", "t3"), res(Unknown)},
	)
	whole := Final{
		Bans:     map[string]FinalBan{"b1": {User: "u", Tag: "t1"}, "b2": {User: "v", Tag: "t2", Lifted: true}},
		Sessions: map[string]FinalSession{"s0": {User: "u", Revoked: true}, "s1": {User: "w", Revoked: true}},
	}
	if lost := LostWrites(ops, whole); len(lost) != 0 {
		t.Fatalf("lost %v in a whole store", lost)
	}
	// The deliberately broken store: the acknowledged ban b1 is gone, the
	// lift of b2 was undone, the revocation of s1 too, and b1 left s0
	// live (a ban split from its revocations, or a batch lost).
	broken := Final{
		Bans:     map[string]FinalBan{"b2": {User: "v", Tag: "t2"}},
		Sessions: map[string]FinalSession{"s0": {User: "u"}, "s1": {User: "w"}},
	}
	if lost := LostWrites(ops, broken); len(lost) != 4 {
		t.Fatalf("lost %d writes (%v), want 4", len(lost), lost)
	}
}
