// Command guestbook is a small gRPC service protected by Portcullis: it
// keeps a client.Mirror of a running authority and checks every call
// locally with the interceptors package. A banned user is refused on their
// next call, and their open streams end within milliseconds of the ban.
//
// Start an authority (make run), then, from the repository root:
//
//	go run ./examples/guestbook --authority 127.0.0.1:7470 \
//	    --api-key-file data/admin.key --listen 127.0.0.1:7480
//
// The service is grpc.testing.TestService (from grpc-go, so the example
// needs no proto of its own) plus health and reflection:
//
//	UnaryCall            sign the guestbook (capability "post")
//	StreamingOutputCall  follow it: past entries, then new ones live
//	FullDuplexCall       chat (capability "chat")
//
// With grpcurl (go tool -modfile=tools/go.mod grpcurl), as alice, whose
// access token comes from SessionService/CreateSession:
//
//	grpcurl -plaintext -H "authorization: Bearer $ACCESS" \
//	    -d '{"payload":{"body":"aGVsbG8="}}' \
//	    127.0.0.1:7480 grpc.testing.TestService/UnaryCall
//	grpcurl -plaintext -H "authorization: Bearer $ACCESS" \
//	    127.0.0.1:7480 grpc.testing.TestService/StreamingOutputCall
//
// Ban alice (BanService/CreateBan) and the follow stream ends with
// PermissionDenied, ErrorInfo reason USER_BANNED and the ban's ban_id.
//
// The API key needs only the events:watch scope; the example accepts the
// bootstrap admin key for convenience.
//
// It may import client/, interceptors/, gen/ and grpc; nothing from
// internal/ or server/ (its test starts a real authority with
// authoritytest).
package main
