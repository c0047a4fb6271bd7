package server

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// ts converts a time; the zero time becomes an unset field.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fromTS converts an optional timestamp; unset becomes the zero time.
func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// optionalTS converts a timestamp whose presence means something (an
// expire_time: unset is "never"): unset is nil, and a set one reaches the
// domain even when it is the zero time (year 1, seconds -62135596800),
// which the domain refuses as not in the future instead of reading it as
// unset. A timestamp outside what google.protobuf.Timestamp allows
// (years 1 to 9999, nanos in [0, 1e9)) is refused here.
func optionalTS(field string, t *timestamppb.Timestamp) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	if err := t.CheckValid(); err != nil {
		return nil, &authority.FieldError{Field: field, Msg: "is not a valid timestamp (years 1 to 9999, nanos in [0, 1e9))"}
	}
	v := t.AsTime()
	return &v, nil
}

func sessionPB(s storage.Session) *pb.Session {
	out := &pb.Session{
		SessionId: s.ID, TenantId: s.TenantID, UserId: s.UserID, DeviceId: s.DeviceID,
		Attributes: s.Attributes,
		CreateTime: ts(s.CreateTime), ExpireTime: ts(s.ExpireTime), RefreshTime: ts(s.RefreshTime),
		AccessExpireTime: ts(s.AccessExpireTime), RevokeTime: ts(s.RevokeTime),
		RevokeReason: s.RevokeReason, RevokedBy: s.RevokedBy,
	}
	if s.ClientIP.IsValid() {
		out.ClientIp = s.ClientIP.String()
	}
	return out
}

// listPB converts each of xs with f.
func listPB[T, P any](xs []T, f func(T) P) []P {
	out := make([]P, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func revokedSessionPB(s storage.Session) *pb.RevokedSession {
	return &pb.RevokedSession{
		SessionId: s.ID, TenantId: s.TenantID, UserId: s.UserID,
		RevokeTime: ts(s.RevokeTime), AccessExpireTime: ts(s.AccessExpireTime), Reason: s.RevokeReason,
	}
}

func subjectPB(kind storage.SubjectKind, value string) *pb.Subject {
	switch kind {
	case storage.SubjectUser:
		return &pb.Subject{Kind: &pb.Subject_UserId{UserId: value}}
	case storage.SubjectDevice:
		return &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: value}}
	default:
		return &pb.Subject{Kind: &pb.Subject_Ip{Ip: value}}
	}
}

// subjectFromPB returns the subject kind and value ("" kind when none set).
func subjectFromPB(s *pb.Subject) (storage.SubjectKind, string) {
	switch k := s.GetKind().(type) {
	case *pb.Subject_UserId:
		return storage.SubjectUser, k.UserId
	case *pb.Subject_Ip:
		return storage.SubjectIP, k.Ip
	case *pb.Subject_DeviceId:
		return storage.SubjectDevice, k.DeviceId
	}
	return "", ""
}

var banStates = map[authority.BanState]pb.BanState{
	authority.StateActive:  pb.BanState_BAN_STATE_ACTIVE,
	authority.StateExpired: pb.BanState_BAN_STATE_EXPIRED,
	authority.StateLifted:  pb.BanState_BAN_STATE_LIFTED,
}

func banPB(b storage.Ban, now time.Time) *pb.Ban {
	return &pb.Ban{
		BanId: b.ID, TenantId: b.TenantID, Subject: subjectPB(b.Kind, b.Value),
		Capabilities: b.Capabilities, Reason: b.Reason, Policy: b.Policy, CreatedBy: b.CreatedBy,
		CreateTime: ts(b.CreateTime), ExpireTime: ts(b.ExpireTime),
		LiftTime: ts(b.LiftTime), LiftedBy: b.LiftedBy, LiftReason: b.LiftReason,
		State: banStates[authority.StateAt(b, now)],
	}
}

func bansPB(bs []storage.Ban, now time.Time) []*pb.Ban {
	return listPB(bs, func(b storage.Ban) *pb.Ban { return banPB(b, now) })
}

func keyPB(k storage.SigningKey) *pb.VerificationKey {
	return &pb.VerificationKey{
		KeyId: k.ID, Algorithm: k.Algorithm, PublicKey: k.PublicKey,
		CreateTime: ts(k.CreateTime), RetireTime: ts(k.RetireTime), VerifyUntil: ts(k.VerifyUntil),
	}
}

func auditPB(r storage.AuditRecord) *pb.AuditRecord {
	return &pb.AuditRecord{
		AuditId: r.ID, Time: ts(r.Time), Action: r.Action, Actor: r.Actor, ActorAddress: r.ActorAddr,
		TenantId: r.TenantID, Subject: r.Subject, TargetId: r.TargetID, Reason: r.Reason, Policy: r.Policy,
		Details: r.Details, Channel: r.Channel,
	}
}

func apiKeyPB(k storage.APIKey) *pb.APIKey {
	return &pb.APIKey{
		ApiKeyId: k.ID, Name: k.Name, Scopes: k.Scopes,
		CreateTime: ts(k.CreateTime), ExpireTime: ts(k.ExpireTime), RevokeTime: ts(k.RevokeTime),
	}
}

// eventPB converts one stored event; ok is false for a kind this version
// does not know (skipped rather than sent half-filled).
func eventPB(e storage.Event, now time.Time) (*pb.Event, bool) {
	out := &pb.Event{Time: ts(e.Time)}
	switch {
	case e.Kind == storage.EventBanCreated && e.Ban != nil:
		out.Kind = &pb.Event_BanCreated{BanCreated: banPB(*e.Ban, now)}
	case e.Kind == storage.EventBanLifted && e.Ban != nil:
		out.Kind = &pb.Event_BanLifted{BanLifted: banPB(*e.Ban, now)}
	case e.Kind == storage.EventSessionRevoked && e.Session != nil:
		out.Kind = &pb.Event_SessionRevoked{SessionRevoked: revokedSessionPB(*e.Session)}
	case e.Kind == storage.EventKeyAdded && e.Key != nil:
		out.Kind = &pb.Event_KeyAdded{KeyAdded: keyPB(*e.Key)}
	case e.Kind == storage.EventKeyRetired && e.Key != nil:
		out.Kind = &pb.Event_KeyRetired{KeyRetired: keyPB(*e.Key)}
	case issuerEventPB(e, out): // issuers.go
	default:
		return nil, false
	}
	return out, true
}
