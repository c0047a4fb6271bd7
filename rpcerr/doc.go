// Package rpcerr is the one catalogue of Portcullis errors: the ErrorInfo
// domain, the table ErrorReason -> gRPC code -> sentinel error, the
// ErrorInfo metadata keys, BanError, and building and parsing a status with
// its ErrorInfo (and RetryInfo). The proto enum portcullis.v1.ErrorReason
// (proto/portcullis/v1/errors.proto) is the wire contract; ErrorInfo.reason
// is exactly the enum value's name.
//
// The server maps domain errors onto this catalogue (server/errors.go) and
// the Go client maps statuses back to its sentinels, which are this
// package's (client/errors.go), so that the two cannot disagree.
//
// It is a leaf: it imports only gen/, gRPC's status and codes, genproto's
// errdetails, protobuf (for RetryInfo's duration) and the standard library
// (a test checks), so that both client/ (which may import nothing
// internal) and server/ can use it.
package rpcerr
