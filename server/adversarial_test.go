package server_test

// Adversarial tests, from the threat model in SECURITY.md: forged tokens,
// refresh-token theft, scope escalation, cross-tenant isolation and revoked
// or expired API keys.

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
	"github.com/portcullis-dev/portcullis/token"
)

// reasonOf returns the code and ErrorInfo reason of err ("" without one).
func reasonOf(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.GetReason()
		}
	}
	return st.Code(), ""
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// rawToken builds a compact JWS from a header and claims, signed by sign
// over "header.claims" (nil sign: an empty signature).
func rawToken(t *testing.T, header, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	in := b64JSON(t, header) + "." + b64JSON(t, claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + b64(sig)
}

func edSigner(k ed25519.PrivateKey) func([]byte) []byte {
	return func(m []byte) []byte { return ed25519.Sign(k, m) }
}

// signingKeys returns every signing key in the store, private parts
// included: the tests forge with the authority's own keys to prove that a
// valid signature alone is not enough.
func signingKeys(t *testing.T, e *env) []storage.SigningKey {
	t.Helper()
	var keys []storage.SigningKey
	err := e.store.View(context.Background(), func(tx storage.ReadTx) error {
		for k, err := range tx.SigningKeys() {
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// currentSigningKey returns the key that signs new tokens.
func currentSigningKey(t *testing.T, e *env) storage.SigningKey {
	t.Helper()
	for _, k := range signingKeys(t, e) {
		if k.RetireTime.IsZero() {
			return k
		}
	}
	t.Fatal("no current signing key")
	return storage.SigningKey{}
}

// verifierLookup is the KeyLookup a mirror would build from ListKeys.
func verifierLookup(t *testing.T, e *env) token.KeyLookup {
	t.Helper()
	resp, err := e.keys.ListKeys(e.admin(), &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range resp.GetKeys() {
		keys[k.GetKeyId()] = k.GetPublicKey()
	}
	return func(kid string) (ed25519.PublicKey, bool) { k, ok := keys[kid]; return k, ok }
}

func TestForgedTokensAreRejected(t *testing.T) {
	e := newEnv(t, envOptions{})
	live := e.login(&pb.CreateSessionRequest{UserId: "alice", DeviceId: "d1"})
	sess := live.GetSession()
	real := currentSigningKey(t, e)
	realPriv := ed25519.NewKeyFromSeed(real.PrivateKey)
	_, attacker, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	attackerPub := attacker.Public().(ed25519.PublicKey)
	now := e.clock.Now()

	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"sid": sess.GetSessionId(), "tid": sess.GetTenantId(), "did": sess.GetDeviceId(),
			"iss": authority.DefaultIssuer, "sub": sess.GetUserId(),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}
		if mod != nil {
			mod(c)
		}
		return c
	}
	hdr := func(alg, kid string, extra map[string]any) map[string]any {
		h := map[string]any{"alg": alg, "typ": "JWT", "kid": kid}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(m []byte) []byte { h := hmac.New(sha256.New, secret); h.Write(m); return h.Sum(nil) }
	}
	attackerJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(attackerPub), "kid": real.ID}

	// The control: the authority's own token verifies.
	if _, err := e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: live.GetAccessToken()}); err != nil {
		t.Fatalf("control: the real token was refused: %v", err)
	}
	// A valid token with one claim changed after signing.
	parts := strings.Split(live.GetAccessToken(), ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var orig map[string]any
	if err := json.Unmarshal(raw, &orig); err != nil {
		t.Fatal(err)
	}
	orig["sub"] = "admin"
	tampered := parts[0] + "." + b64JSON(t, orig) + "." + parts[2]

	cases := []struct {
		name, tok, reason string
	}{
		{"alg none", rawToken(t, hdr("none", real.ID, nil), claims(nil), nil), "TOKEN_INVALID"},
		{"alg none with a signature", rawToken(t, hdr("none", real.ID, nil), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"HS256 keyed with the public key", rawToken(t, hdr("HS256", real.ID, nil), claims(nil), hs256(real.PublicKey)), "TOKEN_INVALID"},
		{"HS256 keyed with the base64 public key", rawToken(t, hdr("HS256", real.ID, nil), claims(nil), hs256([]byte(b64(real.PublicKey)))), "TOKEN_INVALID"},
		{"unknown key, real kid", rawToken(t, hdr("EdDSA", real.ID, nil), claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		{"unknown key, unknown kid", rawToken(t, hdr("EdDSA", "key_attacker", nil), claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		{"kid naming no key", rawToken(t, hdr("EdDSA", "key_nope", nil), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"kid is a path", rawToken(t, hdr("EdDSA", "../../etc/passwd", nil), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"kid is empty", rawToken(t, hdr("EdDSA", "", nil), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"kid not a string", rawToken(t, map[string]any{"alg": "EdDSA", "kid": 1}, claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"embedded jwk", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"jwk": attackerJWK}), claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		{"embedded jwk, no kid", rawToken(t, map[string]any{"alg": "EdDSA", "jwk": attackerJWK}, claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		{"jku header", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"jku": "https://attacker.example/jwks.json"}), claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		{"x5u header", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"x5u": "https://attacker.example/cert.pem"}), claims(nil), edSigner(attacker)), "TOKEN_INVALID"},
		// crit names extensions the verifier must understand; it
		// understands none, so RFC 7515 section 4.1.11 says reject, even
		// when the signature is the authority's own.
		{"crit header, real signature", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"crit": []string{"exp"}}), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"crit header naming an extension", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"crit": []string{"b64"}, "b64": false}), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"crit header as a string", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"crit": "x"}), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"crit header, empty", rawToken(t, hdr("EdDSA", real.ID, map[string]any{"crit": []string{}}), claims(nil), edSigner(realPriv)), "TOKEN_INVALID"},
		{"tampered claim", tampered, "TOKEN_INVALID"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "TOKEN_INVALID"},
		{"two segments", parts[0] + "." + parts[1], "TOKEN_INVALID"},
		{"expired", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-time.Minute).Unix()
		}), edSigner(realPriv)), "TOKEN_EXPIRED"},
		{"no exp", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { delete(c, "exp") }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"nbf in the future", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"iat in the future", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"another issuer", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { c["iss"] = "evil" }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"no issuer", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { delete(c, "iss") }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"no sid", rawToken(t, hdr("EdDSA", real.ID, nil), claims(func(c map[string]any) { delete(c, "sid") }), edSigner(realPriv)), "TOKEN_INVALID"},
		{"garbage", "not.a.token", "TOKEN_INVALID"},
	}
	lookup := verifierLookup(t, e)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: c.tok})
			if code, reason := reasonOf(err); code != codes.Unauthenticated || reason != c.reason {
				t.Errorf("VerifySession: got %v %s (%v), want Unauthenticated %s", code, reason, err, c.reason)
			}
			want := token.ErrInvalid
			if c.reason == "TOKEN_EXPIRED" {
				want = token.ErrExpired
			}
			if _, err := token.Verify(c.tok, authority.DefaultIssuer, now, lookup); !errors.Is(err, want) {
				t.Errorf("token.Verify: %v, want %v", err, want)
			}
		})
	}
}

// TestRetiredKeyAfterItsLifetime: a token naming a rotated-out key is
// refused once the key's verification window has passed, even when the
// token's own exp is far in the future (signed with the leaked old key).
func TestRetiredKeyAfterItsLifetime(t *testing.T) {
	e := newEnv(t, envOptions{})
	live := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	old := currentSigningKey(t, e)
	if _, err := e.keys.RotateKey(e.admin(), &pb.RotateKeyRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	// Within the window the old token still verifies.
	if _, err := e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: live.GetAccessToken()}); err != nil {
		t.Fatalf("token of the retired key within its window: %v", err)
	}
	e.clock.Advance(authority.DefaultAccessTTL + time.Minute)
	now := e.clock.Now()
	sess := live.GetSession()
	forged := rawToken(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": old.ID}, map[string]any{
		"sid": sess.GetSessionId(), "tid": sess.GetTenantId(), "iss": authority.DefaultIssuer, "sub": sess.GetUserId(),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}, edSigner(ed25519.NewKeyFromSeed(old.PrivateKey)))
	_, err := e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: forged})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_INVALID")
	// The real token: expired, and its key is gone; either answer refuses.
	_, err = e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: live.GetAccessToken()})
	if code, reason := reasonOf(err); code != codes.Unauthenticated || (reason != "TOKEN_EXPIRED" && reason != "TOKEN_INVALID") {
		t.Fatalf("old token after the window: %v", err)
	}
	lookup := verifierLookup(t, e)
	if _, ok := lookup(old.ID); ok {
		t.Fatal("ListKeys still publishes the retired key after its window")
	}
	if _, err := token.Verify(forged, authority.DefaultIssuer, now, lookup); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("token.Verify: %v", err)
	}
}

// TestConcurrentRefreshTheft: the same refresh token from many goroutines
// at once. Exactly one rotation wins; every other presentation is a reuse
// of a superseded token, TOKEN_THEFT_DETECTED, and the session ends for
// everyone, the winner included.
func TestConcurrentRefreshTheft(t *testing.T) {
	e := newEnv(t, envOptions{})
	s := e.login(&pb.CreateSessionRequest{UserId: "gina"})
	const n = 32
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		mu      sync.Mutex
		winners []*pb.RefreshSessionResponse
		reasons = map[string]int{}
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, r)
				return
			}
			code, reason := reasonOf(err)
			if code != codes.Unauthenticated {
				reason = code.String() + " " + reason
			}
			reasons[reason]++
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || reasons["TOKEN_THEFT_DETECTED"] != n-1 {
		t.Fatalf("%d winners, failures %v; want 1 winner and %d TOKEN_THEFT_DETECTED", len(winners), reasons, n-1)
	}
	w := winners[0]
	_, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: w.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	for _, tok := range []string{w.GetAccessToken(), s.GetAccessToken()} {
		_, err = e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: tok})
		wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	}
	g, err := e.sessions.GetSession(e.admin(), &pb.GetSessionRequest{SessionId: s.GetSession().GetSessionId()})
	if err != nil || g.GetSession().GetRevokeTime() == nil {
		t.Fatalf("session not revoked: %v %v", g, err)
	}
}

// method is one RPC found in the registered service descriptors.
type method struct {
	full           string
	input          protoreflect.MessageType
	output         protoreflect.MessageType
	client, server bool // streaming
}

// registeredMethods walks the services registered on e's grpc.Server and
// resolves each method's request type through protoregistry, so that a new
// RPC is covered without editing the tests.
func registeredMethods(t *testing.T, e *env) []method {
	t.Helper()
	var out []method
	for svc, info := range e.grpc.GetServiceInfo() {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
		if err != nil {
			t.Fatalf("service %s: %v", svc, err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		for _, m := range info.Methods {
			md := sd.Methods().ByName(protoreflect.Name(m.Name))
			if md == nil {
				t.Fatalf("%s/%s not in the descriptor", svc, m.Name)
			}
			in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			if err != nil {
				t.Fatal(err)
			}
			outT, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, method{full: "/" + svc + "/" + m.Name, input: in, output: outT, client: m.IsClientStream, server: m.IsServerStream})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].full < out[j].full })
	if len(out) < 20 {
		t.Fatalf("only %d methods found", len(out))
	}
	return out
}

// callEmpty calls m with an empty request and returns the first error (nil
// when the call, or the first message of a stream, succeeded).
func callEmpty(ctx context.Context, conn *grpc.ClientConn, m method) error {
	// A hang guard, not a bound on the call: a busy machine may be slow.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, resp := m.input.New().Interface(), m.output.New().Interface()
	if !m.client && !m.server {
		return conn.Invoke(ctx, m.full, req, resp)
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: m.client, ServerStreams: m.server}, m.full)
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	err = st.RecvMsg(resp)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// TestScopeEscalation: a key holding each single scope calls every RPC;
// exactly the methods the rule table grants that scope get past
// authentication (an empty request may then fail validation, which still
// proves it got past). Refusals are PermissionDenied / PERMISSION_DENIED;
// without a key, Unauthenticated / API_KEY_INVALID.
func TestScopeEscalation(t *testing.T) {
	e := newEnv(t, envOptions{})
	methods := registeredMethods(t, e)
	creds := map[string]string{"(none)": ""}
	for _, sc := range authority.AllScopes {
		creds[sc] = e.keyWith("only-"+strings.ReplaceAll(sc, ":", "-"), sc)
	}
	for sc, secret := range creds {
		ctx := context.Background()
		if secret != "" {
			ctx = as(secret)
		}
		for _, m := range methods {
			scope, public, refresh, ok := server.RuleOf(m.full)
			if !ok {
				t.Errorf("%s has no rule", m.full)
				continue
			}
			allowed := public || refresh || (secret != "" && (sc == scope || sc == authority.ScopeAdmin))
			err := callEmpty(ctx, e.conn, m)
			code, reason := reasonOf(err)
			refused := (code == codes.PermissionDenied && reason == "PERMISSION_DENIED") ||
				(code == codes.Unauthenticated && reason == "API_KEY_INVALID")
			switch {
			case allowed && refused:
				t.Errorf("scope %s: %s refused (%v), but the table allows it", sc, m.full, err)
			case !allowed && !refused:
				t.Errorf("scope %s: %s got past auth (%v); the table requires %q", sc, m.full, err, scope)
			case !allowed && secret == "" && code != codes.Unauthenticated:
				t.Errorf("no key: %s gave %v, want Unauthenticated", m.full, err)
			}
		}
	}
}

// TestCrossTenant: sessions and bans of tenant A are invisible to, and
// unaffected by, operations scoped to tenant B; "*" bans apply to both.
func TestCrossTenant(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	user := func(id string) *pb.Subject { return &pb.Subject{Kind: &pb.Subject_UserId{UserId: id}} }
	a := e.login(&pb.CreateSessionRequest{TenantId: "tenant-a", UserId: "alice", DeviceId: "d1"})
	if _, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "tenant-a", Subject: user("mallory"), Reason: "a only"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "*", Subject: user("eve"), Reason: "everywhere"}); err != nil {
		t.Fatal(err)
	}
	before := e.dump()

	ls, err := e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "tenant-b", IncludeInactive: true})
	if err != nil || len(ls.GetSessions()) != 0 {
		t.Fatalf("ListSessions(B) = %v, %v; want none", ls.GetSessions(), err)
	}
	ls, err = e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "tenant-b", UserId: "alice", IncludeInactive: true})
	if err != nil || len(ls.GetSessions()) != 0 {
		t.Fatalf("ListSessions(B, alice) = %v, %v; want none", ls.GetSessions(), err)
	}
	lb, err := e.bans.ListBans(ctx, &pb.ListBansRequest{TenantId: "tenant-b"})
	if err != nil || len(lb.GetBans()) != 0 {
		t.Fatalf("ListBans(B) = %v, %v; want none", lb.GetBans(), err)
	}
	cb, err := e.bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: "tenant-b", UserId: "mallory"})
	if err != nil || cb.GetBanned() || len(cb.GetBans()) != 0 {
		t.Fatalf("CheckBan(B, mallory) = %v, %v; A's ban leaked into B", cb, err)
	}
	cb, err = e.bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: "tenant-b", UserId: "eve"})
	if err != nil || !cb.GetBanned() {
		t.Fatalf(`CheckBan(B, eve) = %v, %v; the "*" ban must apply`, cb, err)
	}
	cb, err = e.bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: "tenant-a", UserId: "mallory"})
	if err != nil || !cb.GetBanned() {
		t.Fatalf("CheckBan(A, mallory) = %v, %v", cb, err)
	}
	if after := e.dump(); after != before {
		t.Fatal("tenant-B reads changed the store")
	}
	rv, err := e.sessions.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{TenantId: "tenant-b", UserId: "alice", Reason: "b"})
	if err != nil || rv.GetRevokedSessions() != 0 {
		t.Fatalf("RevokeUserSessions(B, alice) = %v, %v; want 0", rv, err)
	}
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: a.GetAccessToken()}); err != nil {
		t.Fatalf("A's session after B's revocation: %v", err)
	}

	// Creating sessions in B: A's ban does not apply there, "*" does.
	if _, err := e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "tenant-b", UserId: "mallory"}); err != nil {
		t.Fatalf("CreateSession(B, mallory): %v", err)
	}
	_, err = e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "tenant-b", UserId: "eve"})
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
	_, err = e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "tenant-a", UserId: "mallory"})
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")

	// A session of alice in B, then a ban of alice in B and a revocation
	// of alice in B: A's alice is untouched.
	b := e.login(&pb.CreateSessionRequest{TenantId: "tenant-b", UserId: "alice"})
	if _, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "tenant-b", Subject: user("alice"), Reason: "b only"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sessions.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{TenantId: "tenant-b", UserId: "alice", Reason: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: a.GetAccessToken()}); err != nil {
		t.Fatalf("A's session after B's ban and revocation: %v", err)
	}
	if _, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: a.GetRefreshToken()}); err != nil {
		t.Fatalf("A's refresh after B's ban: %v", err)
	}
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: b.GetAccessToken()}); err == nil {
		t.Fatal("B's banned alice still verifies")
	}
	la, err := e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "tenant-a"})
	if err != nil || len(la.GetSessions()) != 1 || la.GetSessions()[0].GetSessionId() != a.GetSession().GetSessionId() {
		t.Fatalf("ListSessions(A) = %v, %v; want just A's alice", la.GetSessions(), err)
	}
}

// TestRevokedAndExpiredAPIKeys: a revoked or expired key is refused on its
// next call, and an open Watch stream of a revoked key is ended within a
// checkpoint interval.
func TestRevokedAndExpiredAPIKeys(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 50 * time.Millisecond}})
	ctx := e.admin()
	created, err := e.apiKeys.CreateAPIKey(ctx, &pb.CreateAPIKeyRequest{Name: "svc", Scopes: []string{authority.ScopeSessionsRead, authority.ScopeEventsWatch}})
	if err != nil {
		t.Fatal(err)
	}
	svc := created.GetSecret()
	if _, err := e.sessions.ListSessions(as(svc), &pb.ListSessionsRequest{}); err != nil {
		t.Fatal(err)
	}
	// Open a Watch stream and read its snapshot.
	wctx, cancel := context.WithTimeout(as(svc), 10*time.Second)
	defer cancel()
	stream, err := e.events.Watch(wctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.apiKeys.RevokeAPIKey(ctx, &pb.RevokeAPIKeyRequest{ApiKeyId: created.GetApiKey().GetApiKeyId()}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	_, err = e.sessions.ListSessions(as(svc), &pb.ListSessionsRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
	for {
		_, err := stream.Recv()
		if err == nil {
			continue // checkpoints sent before the re-check
		}
		wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
		break
	}
	// The stream's context ends after 10 s: a stream that the re-check did
	// not end fails above with DeadlineExceeded, not by a timed assertion.
	t.Logf("the stream of the revoked key ended %v after the revocation", time.Since(revoked))

	// Expiry: refused once the clock passes expire_time, stream included.
	exp, err := e.apiKeys.CreateAPIKey(ctx, &pb.CreateAPIKeyRequest{Name: "temp", Scopes: []string{authority.ScopeEventsWatch, authority.ScopeBansRead},
		ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	stream2, err := e.events.Watch(as(exp.GetSecret()), &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream2.Recv(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	_, err = e.bans.ListBans(as(exp.GetSecret()), &pb.ListBansRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
	for {
		_, err := stream2.Recv()
		if err == nil {
			continue
		}
		wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
		break
	}
	// The denied calls are audited.
	aud, err := e.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{Action: "call.denied"})
	if err != nil || len(aud.GetRecords()) < 2 {
		t.Fatalf("call.denied records: %d, %v", len(aud.GetRecords()), err)
	}
}
