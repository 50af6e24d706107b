// Package generator turns a parsed data template (*template.Template) into one gofmt'ed Go
// file of typed code, emitted with dave/jennifer.
//
// # What is generated
//
// For the light template (schemas/light.json) the file contains, in this order:
//
//   - a compile-time guard against the tplwire runtime's supported generated-code versions,
//     `const ProductID` (when the template has one) and `const templateJSON`, the template in
//     canonical form (see CanonicalJSON) for the runtime;
//   - `Properties`: one pointer field per property with `json:"id,omitempty"` — nil means not
//     present, so reports and controls are partial — and `ControlProperties`, holding only the
//     writable ("rw") properties, which is what the cloud can control;
//   - a named type per enum (`type Color int64` with constants, String() returning the
//     template label, and Valid()), stringenum (`type Unit string`, constants, Valid()) and
//     struct (members are pointers: the platform accepts partial structs);
//   - per event a params struct (`StatusReport`) with EventID/EventType, per action
//     `XxxInput` / `XxxOutput` structs with ActionID;
//   - `Validate() error` on every struct type, enforcing the template's limits (int/float
//     ranges, string length in characters, enum membership, struct members, array elements;
//     a nil array, which would encode as null, is an error) and reporting every problem with
//     its JSON path (`arrStruct[1].intM: -3 is out of range [0, 100]`);
//   - the `Handler` interface: Control(ctx, ControlProperties) error plus one method per action;
//   - the typed Device over runtime/thing (see genDevice in device.go).
//
// Wire encodings follow protocol.md §2.3: bool is tplwire.Bool (0/1 on the wire, true/false
// accepted), int is int64, float float64, string string, timestamp tplwire.Timestamp (integer
// seconds; milliseconds and numeric strings accepted), array a slice of the element type.
// Event params and action input/output fields are plain values (all are required); property
// and struct-member fields are pointers.
//
// # Naming
//
// GoName is the single naming function: it splits ids on non-alphanumerics and case changes,
// capitalises words, upper-cases known initialisms (ID, URL, GPS, MAC, IP, CPU, TDS, HTTP,
// JSON, API, UTC, SSID, RSSI, IMEI, LED, PM25, CO2, ... — see initialisms), drops non-ASCII,
// prefixes a leading digit with X and falls back to X+hex code points for ids with no ASCII
// letters. Exported names cannot clash with Go keywords or predeclared identifiers.
//
// Collisions are resolved stably in template order within each Go namespace: the package
// (ProductID, Properties, ControlProperties, Handler, Device, New, Option, Options, Template,
// Status are reserved first, then properties and the types they need, then events, then
// actions), the fields of each struct (method names such as Validate are reserved), the
// Handler methods (Control reserved) and the Device methods (Report, GetStatus, ... and
// Post<Event>). The first claimant keeps the plain name, later ones get 2, 3, ...
// (`power_switch` → PowerSwitch, `powerSwitch` → PowerSwitch2), and each rename is reported
// through Options.OnWarning. Nested types are named parent + member: the enum of struct member
// enum_param of property struct is StructEnumParam, the element struct of an array property
// arrStruct is ArrStructItem, an enum input of action light_on is LightOnInputXxx.
//
// Enum constants are TypeName+Label when every label of that enum is clean ASCII text
// (letters, digits, '_', '-', space; starting with a letter) and the labels give distinct
// names — ColorRed, ColorGreen — and otherwise TypeName+Key for every entry: Mode1, ModeN1
// for key -1, LevelAuto for the stringenum key "auto". The choice depends only on the mapping
// in file order, never on map iteration order.
//
// # Safety of template text
//
// Names, descriptions and labels come from outside. They only reach // comments (after
// commentText removes control characters, line/paragraph separators and bidi overrides, and
// every generated comment starts with a Go name, so no //go: directive can appear) and Go
// string literals (quoted by jennifer with strconv-style escaping). Ids are restricted to
// ^[A-Za-z_][A-Za-z0-9_]*$ (template.Parse enforces it; Generate re-checks models built in
// code), so they are safe as struct-tag JSON keys.
//
// # Errors
//
// Generate returns a template.ErrorList (FILE:LINE:COL: message) for model problems, and if
// the assembled source ever fails to parse (a generator bug) an error carrying the numbered
// source.
package generator
