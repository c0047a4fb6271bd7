package server_test

import (
	"context"
	"strings"
	"testing"

	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// reflectedFiles asks the server, through reflection v1, for the file that
// defines symbol and everything it imports, as grpcurl does.
func reflectedFiles(t *testing.T, e *env, symbol string) *protoregistry.Files {
	t.Helper()
	stream, err := reflectionv1.NewServerReflectionClient(e.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.GetErrorResponse(); e != nil {
		t.Fatalf("reflection for %s: %v", symbol, e)
	}
	var set descriptorpb.FileDescriptorSet
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatal(err)
		}
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// comment is the leading comment of the descriptor named name.
func comment(t *testing.T, files *protoregistry.Files, name string) string {
	t.Helper()
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments
}

// Reflection serves the protos' comments, so that grpcurl describe shows
// them: for a service, a method, a message, a field and an enum value, and
// for the message that errors carry, and the vendored google.rpc messages
// that carry it (a client in another language decodes errors from them).
func TestReflectionServesComments(t *testing.T) {
	e := newEnv(t, envOptions{})
	bans := reflectedFiles(t, e, "portcullis.v1.BanService")
	errs := reflectedFiles(t, e, "portcullis.v1.ErrorReason")
	info := reflectedFiles(t, e, "google.rpc.ErrorInfo")
	st := reflectedFiles(t, e, "google.rpc.Status")
	for _, c := range []struct {
		files        *protoregistry.Files
		name, phrase string
	}{
		{bans, "portcullis.v1.BanService", "creates, lifts and looks up bans"},
		{bans, "portcullis.v1.BanService.CreateBan", "A full ban revokes every matching live session"},
		{bans, "portcullis.v1.CreateBanRequest", "describes the ban"},
		{bans, "portcullis.v1.CreateBanRequest.duration", "Go duration syntax"},
		{errs, "portcullis.v1.ErrorReason", "machine-readable reason of every error"},
		{errs, "portcullis.v1.USER_BANNED", "active full ban"},
		{errs, "portcullis.v1.CONFLICT", "lost the race against concurrent writers"},
		{info, "google.rpc.ErrorInfo", "Describes the cause of the error"},
		{info, "google.rpc.RetryInfo", "Describes when the clients can retry"},
		{st, "google.rpc.Status", "logical error model"},
	} {
		if got := comment(t, c.files, c.name); !strings.Contains(got, c.phrase) {
			t.Errorf("%s: comment %q, want one containing %q", c.name, got, c.phrase)
		}
	}
}

// The v1alpha service (older grpcurl and other clients) serves the same,
// and services outside portcullis.v1 (health) still resolve.
func TestReflectionV1AlphaAndHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	stream, err := reflectionv1alpha.NewServerReflectionClient(e.conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	for _, symbol := range []string{"portcullis.v1.SessionService", "grpc.health.v1.Health"} {
		if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{
			MessageRequest: &reflectionv1alpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol},
		}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		fds := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(fds) == 0 {
			t.Fatalf("%s: %v", symbol, resp.GetErrorResponse())
		}
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(fds[0], fd); err != nil {
			t.Fatal(err)
		}
		if symbol == "portcullis.v1.SessionService" && len(fd.GetSourceCodeInfo().GetLocation()) == 0 {
			t.Errorf("%s: file %s has no comments through v1alpha", symbol, fd.GetName())
		}
	}
}
