package ssf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	rk := testRSA(t)
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	e := b64(big.NewInt(int64(rk.E)).Bytes())
	doc := map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa", "alg": "RS256", "use": "sig", "n": b64(rk.N.Bytes()), "e": e},
		{"kty": "EC", "kid": "ec", "crv": "P-256", "x": b64(pad(ek.X.Bytes())), "y": b64(pad(ek.Y.Bytes()))},
		{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(edPub)},
		{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(make([]byte, 32))}, // kid twice: first wins
		{"kty": "RSA", "kid": "small", "n": b64(small.N.Bytes()), "e": e},
		{"kty": "RSA", "kid": "enc", "use": "enc", "n": b64(rk.N.Bytes()), "e": e},
		{"kty": "RSA", "n": b64(rk.N.Bytes()), "e": e}, // no kid
		{"kty": "RSA", "kid": "wrongalg", "alg": "EdDSA", "n": b64(rk.N.Bytes()), "e": e},
		{"kty": "EC", "kid": "offcurve", "crv": "P-256", "x": b64(pad(ek.X.Bytes())), "y": b64(pad(ek.X.Bytes()))},
		{"kty": "OKP", "kid": "priv", "crv": "Ed25519", "x": b64(edPub), "d": b64(edPriv.Seed())},
		{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
	}}
	body, _ := json.Marshal(doc)
	keys, err := ParseJWKS(body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, k := range keys {
		got[k.KeyID] = k.Algorithms()
	}
	want := map[string]string{"rsa": AlgRS256, "ec": AlgES256, "ed": AlgEdDSA}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for kid, alg := range want {
		if len(got[kid]) != 1 || got[kid][0] != alg {
			t.Fatalf("kid %s: algs %v, want %s", kid, got[kid], alg)
		}
	}
	// The kept keys verify SETs through KeyFunc.
	o := opts(nil, nil)
	o.Key = KeyFunc(keys)
	for _, c := range []struct{ kid, alg string }{{"rsa", AlgRS256}, {"ed", AlgEdDSA}} {
		var raw string
		if c.alg == AlgRS256 {
			raw = mustSign(t, sampleSET(), c.kid, c.alg, rk)
		} else {
			raw = mustSign(t, sampleSET(), c.kid, c.alg, edPriv)
		}
		if _, err := Verify(raw, o); err != nil {
			t.Fatalf("%s: %v", c.kid, err)
		}
	}
	for _, bad := range []string{`{"keys":[]}`, `not json`, `{"keys":[{"kty":"oct","kid":"x"}]}`} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", bad)
		}
	}
}

func TestWireJSONNames(t *testing.T) {
	max := 5
	for _, c := range []struct {
		v    any
		want string
	}{
		{PollRequest{MaxEvents: &max, ReturnImmediately: true, Ack: []string{"a"}, SetErrs: map[string]SETErr{"b": {Err: "invalid_key", Description: "d"}}},
			`{"maxEvents":5,"returnImmediately":true,"ack":["a"],"setErrs":{"b":{"err":"invalid_key","description":"d"}}}`},
		{PollResponse{Sets: map[string]string{"j": "x.y.z"}, MoreAvailable: true}, `{"sets":{"j":"x.y.z"},"moreAvailable":true}`},
		{StreamConfig{StreamID: "s", Issuer: "i", Audience: Audience{"a"}, Delivery: &Delivery{Method: DeliveryPush, EndpointURL: "u", AuthorizationHeader: "h"}},
			`{"stream_id":"s","iss":"i","aud":"a","delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"u","authorization_header":"h"}}`},
		{PushError{Err: "invalid_request", Description: "d"}, `{"err":"invalid_request","description":"d"}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.want {
			t.Errorf("%T: %s (%v), want %s", c.v, b, err, c.want)
		}
	}
	var sc StreamConfig
	if err := json.Unmarshal([]byte(`{"aud":["a","b"]}`), &sc); err != nil || len(sc.Audience) != 2 {
		t.Fatalf("aud array: %v %v", sc.Audience, err)
	}
}

// FuzzParseJWKS: ParseJWKS never panics and keeps only keys with a kid and
// algorithms Verify knows.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","kid":"a","crv":"Ed25519","x":"` + b64(edPub) + `"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"EC","kid":"e","crv":"P-256","x":"","y":""}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := ParseJWKS(body)
		if err != nil {
			return
		}
		for _, k := range keys {
			algs := k.Algorithms()
			if k.KeyID == "" || len(algs) != 1 || signingMethods[algs[0]] == nil {
				t.Fatalf("kept %+v (algs %v)", k, algs)
			}
		}
	})
}
