package server

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/portcullis-dev/portcullis/gen/portcullis/v1/descriptorset"
)

// registerReflection serves server reflection (v1 and v1alpha, as
// reflection.Register does) from the descriptors that make generate keeps
// with their comments (gen/portcullis/v1/descriptorset), so that
// `grpcurl describe` prints each service's, method's, message's, field's
// and enum value's comment. The descriptors compiled into the generated Go
// code have none: protoc-gen-go drops the source info. Files not in the
// set (health, reflection itself) come from the linked-in registry.
func registerReflection(g *grpc.Server) {
	srv := reflection.NewServerV1(reflection.ServerOptions{
		Services:           g,
		DescriptorResolver: commentedFiles,
		ExtensionResolver:  protoregistry.GlobalTypes,
	})
	reflectionv1.RegisterServerReflectionServer(g, srv)
	reflectionv1alpha.RegisterServerReflectionServer(g, reflection.NewServer(reflection.ServerOptions{
		Services:           g,
		DescriptorResolver: commentedFiles,
		ExtensionResolver:  protoregistry.GlobalTypes,
	}))
}

// commentedFiles resolves the embedded descriptors first, then the global
// registry.
var commentedFiles = newCommentedFiles()

// newCommentedFiles reads the embedded descriptor set. The set is
// generated and checked by make check-generated, so it always reads; if it
// did not, reflection would still serve every descriptor, from the linked-in
// registry, without comments (TestReflectionServesComments fails then),
// rather than the authority failing to start.
func newCommentedFiles() withFallback {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(descriptorset.FileDescriptorSet, &set); err == nil {
		if files, err := protodesc.NewFiles(&set); err == nil {
			return withFallback{files, protoregistry.GlobalFiles}
		}
	}
	return withFallback{new(protoregistry.Files), protoregistry.GlobalFiles}
}

// withFallback is a protodesc.Resolver that asks first, then fallback.
type withFallback struct {
	first, fallback *protoregistry.Files
}

func (r withFallback) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.first.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return r.fallback.FindFileByPath(path)
}

func (r withFallback) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.first.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return r.fallback.FindDescriptorByName(name)
}
