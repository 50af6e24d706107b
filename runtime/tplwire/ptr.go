package tplwire

// Ptr returns a pointer to a copy of v. Generated Properties use pointer fields (nil means
// "not present"), and Ptr makes filling them a one-liner:
//
//	p := light.Properties{Brightness: tplwire.Ptr[int64](42)}
func Ptr[T any](v T) *T { return &v }
