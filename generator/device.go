package generator

// genDevice is the hook for the typed Device: `type Device` wrapping a runtime/thing.Thing,
// `New(conn, handler, opts...)`, `Report`, `GetStatus` and one `Post<Event>` per event (the
// names are already reserved in plan.device / plan.pkg, so adding them will not rename any
// existing generated identifier).
//
// TODO(device): emit the Device once runtime/thing exists; until then it emits nothing and
// generated files contain only types, validation and the Handler interface.
func genDevice(e *emitter) { _ = e }
