package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/ssf"
)

func fetchJWKS(t *testing.T, e *env) []byte {
	t.Helper()
	hs := httptest.NewServer(e.srv.HTTPHandler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %s (%v)", resp.StatusCode, body, err)
	}
	return body
}

// TestSETKeyInJWKS: the RS256 SET key SETSigner creates is published in
// the JWKS with the members RFC 7518 names, and a SET it signs verifies
// with ssf.Verify over ssf.ParseJWKS of that document; so does one signed
// with the EdDSA token key.
func TestSETKeyInJWKS(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	rsaKid, rsaSigner, err := e.auth.SETSigner(ctx, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	edKid, edSigner, err := e.auth.SETSigner(ctx, "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	body := fetchJWKS(t, e)
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, k := range doc.Keys {
		if k["kid"] == rsaKid {
			found = k["kty"] == "RSA" && k["alg"] == "RS256" && k["use"] == "sig" && k["n"] != "" && k["e"] == "AQAB" && k["x"] == ""
		}
	}
	if !found {
		t.Fatalf("the JWKS has no proper RSA key %s: %s", rsaKid, body)
	}
	keys, err := ssf.ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("ParseJWKS kept %d keys of %s", len(keys), body)
	}
	now := e.clock.Now()
	ev, err := ssf.Event(ssf.AccountEnabled{})
	if err != nil {
		t.Fatal(err)
	}
	set := ssf.SET{Issuer: "https://portcullis.example", Audience: []string{"https://rx.example"}, IssuedAt: now, JTI: "s-1-0",
		SubjectID: ssf.IssSub("https://portcullis.example", "alice"), Events: map[string]json.RawMessage{ssf.EventAccountEnabled: ev}}
	o := ssf.VerifyOptions{Issuer: set.Issuer, Audience: "https://rx.example", Key: ssf.KeyFunc(keys), Now: now}
	for _, c := range []struct {
		kid, alg string
	}{{rsaKid, "RS256"}, {edKid, "EdDSA"}} {
		signer := rsaSigner
		if c.alg == "EdDSA" {
			signer = edSigner
		}
		raw, err := ssf.Sign(set, c.kid, c.alg, signer)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ssf.Verify(raw, o)
		if err != nil || got.JTI != set.JTI {
			t.Fatalf("%s: %v", c.alg, err)
		}
	}
	// The KeyService lists it too.
	resp, err := e.keys.ListKeys(e.admin(), &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	last := resp.GetKeys()[len(resp.GetKeys())-1]
	if last.GetKeyId() != rsaKid || last.GetAlgorithm() != "RS256" || len(last.GetPublicKey()) == 0 {
		t.Fatalf("ListKeys: %v", resp.GetKeys())
	}
}

// TestMirrorWithSETKey: a mirror syncs and verifies tokens with the RSA SET
// key present, before and after a key rotation (it never receives the RSA
// key, which would not fit its Ed25519 keys).
func TestMirrorWithSETKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	if _, _, err := e.auth.SETSigner(ctx, "RS256"); err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial("passthrough:///bufnet", client.WithInsecure(), client.WithAPIKey(e.adminKey),
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return e.lis.DialContext(ctx) })))
	if err != nil {
		t.Fatal(err)
	}
	m := client.NewMirror(c, client.MirrorOptions{Clock: e.clock.Now,
		Identity: client.MirrorIdentity{Service: "setkey-test", InstanceID: "m1", Version: "v0.0.1"}})
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(mctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); c.Close() })
	wctx, wcancel := context.WithTimeout(ctx, time.Minute) // hang guard
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		tok := e.login(&pb.CreateSessionRequest{UserId: "alice"})
		if err := m.WaitRevision(wctx, e.revision()); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Check(ctx, tok.GetAccessToken(), client.CheckInput{}); err != nil {
			t.Fatalf("mirror refuses a token: %v", err)
		}
	}
	check()
	rot, err := e.keys.RotateKey(e.admin(), &pb.RotateKeyRequest{Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.GetKey().GetAlgorithm() != "EdDSA" {
		t.Fatalf("rotation made %v", rot.GetKey())
	}
	check()
}
