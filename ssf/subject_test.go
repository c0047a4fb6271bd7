package ssf

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSubjectValidate(t *testing.T) {
	valid := map[string]string{
		"opaque":          `{"format":"opaque","id":"11112222333344445555"}`,
		"iss_sub":         `{"format":"iss_sub","iss":"https://issuer.example.com/","sub":"145234573"}`,
		"email":           `{"format":"email","email":"user@example.com"}`,
		"phone":           `{"format":"phone_number","phone_number":"+12065550100"}`,
		"account":         `{"format":"account","uri":"acct:example.user@service.example.com"}`,
		"uri":             `{"format":"uri","uri":"https://user.example.com/"}`,
		"did":             `{"format":"did","url":"did:example:123456"}`,
		"complex":         `{"format":"complex","user":{"format":"iss_sub","iss":"https://i.example","sub":"u"},"session":{"format":"opaque","id":"s"},"tenant":{"format":"opaque","id":"t"}}`,
		"complex, no fmt": `{"user":{"format":"email","email":"a@b.example"},"device":{"format":"opaque","id":"d"}}`,
	}
	invalid := map[string]string{
		"no format":            `{"id":"x"}`,
		"unknown format":       `{"format":"x509","id":"x"}`,
		"opaque without id":    `{"format":"opaque"}`,
		"iss_sub without sub":  `{"format":"iss_sub","iss":"https://i.example"}`,
		"opaque with email":    `{"format":"opaque","id":"x","email":"a@b.example"}`,
		"bad email":            `{"format":"email","email":"not an address"}`,
		"named email":          `{"format":"email","email":"Alice <a@b.example>"}`,
		"bad phone":            `{"format":"phone_number","phone_number":"2065550100"}`,
		"account not acct":     `{"format":"account","uri":"mailto:a@b.example"}`,
		"did not did":          `{"format":"did","url":"https://x.example"}`,
		"empty complex":        `{"format":"complex"}`,
		"complex with id":      `{"format":"complex","id":"x","user":{"format":"opaque","id":"u"}}`,
		"nested complex":       `{"user":{"session":{"format":"opaque","id":"s"}}}`,
		"complex bad member":   `{"user":{"format":"opaque"}}`,
		"simple with a member": `{"format":"opaque","id":"x","user":{"format":"opaque","id":"u"}}`,
		"too long":             `{"format":"opaque","id":"` + strings.Repeat("x", maxSubjectMember+1) + `"}`,
	}
	for name, js := range valid {
		var s Subject
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			t.Fatal(name, err)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, js := range invalid {
		var s Subject
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			t.Fatal(name, err)
		}
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSubjectKeyCanonical(t *testing.T) {
	var a, b Subject
	// Same subject, members in another order, complex with and without format.
	if err := json.Unmarshal([]byte(`{"format":"complex","tenant":{"id":"t","format":"opaque"},"user":{"sub":"u","iss":"https://i.example","format":"iss_sub"}}`), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"user":{"format":"iss_sub","iss":"https://i.example","sub":"u"},"tenant":{"format":"opaque","id":"t"}}`), &b); err != nil {
		t.Fatal(err)
	}
	want := `{"format":"complex","tenant":{"format":"opaque","id":"t"},"user":{"format":"iss_sub","iss":"https://i.example","sub":"u"}}`
	if a.Key() != want || b.Key() != want {
		t.Fatalf("keys\n%s\n%s\nwant\n%s", a.Key(), b.Key(), want)
	}
	if Opaque("x").Key() == Opaque("y").Key() || Opaque("x").Key() == (&Subject{Format: FormatEmail, Email: "x"}).Key() {
		t.Fatal("different subjects share a key")
	}
	var back Subject
	if err := json.Unmarshal([]byte(a.Key()), &back); err != nil || back.Key() != want || back.Validate() != nil {
		t.Fatalf("key does not round-trip: %+v %v", back, err)
	}
}

func TestEventSubject(t *testing.T) {
	top := SET{SubjectID: Opaque("top"), Events: map[string]json.RawMessage{EventAccountDisabled: json.RawMessage(`{"subject":{"format":"opaque","id":"inner"}}`)}}
	if got := top.EventSubject(EventAccountDisabled); got == nil || got.ID != "top" {
		t.Fatalf("sub_id must win: %+v", got)
	}
	inner := SET{Events: map[string]json.RawMessage{EventAccountDisabled: json.RawMessage(`{"subject":{"format":"opaque","id":"inner"},"reason":"hijacking"}`)}}
	if got := inner.EventSubject(EventAccountDisabled); got == nil || got.ID != "inner" {
		t.Fatalf("event subject: %+v", got)
	}
	for name, ev := range map[string]string{"none": `{}`, "invalid": `{"subject":{"format":"opaque"}}`, "not an object": `{"subject":3}`} {
		s := SET{Events: map[string]json.RawMessage{EventAccountDisabled: json.RawMessage(ev)}}
		if got := s.EventSubject(EventAccountDisabled); got != nil {
			t.Errorf("%s: %+v", name, got)
		}
	}
}
