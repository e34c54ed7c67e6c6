import CPKCS11
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A PKCS#11 module loaded with dlopen() and initialised (C_Initialize with CKF_OS_LOCKING_OK, so it may be called
/// from several threads at once). A module is initialised once per process, so modules are shared by path and kept
/// until the process exits: C_Finalize would end every session of every key using it, including those of a
/// signing table a reload has not yet retired.
final class PKCS11Module: @unchecked Sendable {
    /// The path given to dlopen.
    let path: String
    /// The module's function table; it belongs to the module and stays valid while the module is loaded.
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    private init(path: String, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>) {
        self.path = path
        self.functions = functions
    }

    /// The module at `path`, loaded and initialised on first use.
    static func load(_ path: String) throws -> PKCS11Module {
        try loaded.withLock { modules in
            if let module = modules[path] { return module }
            let module = try open(path)
            modules[path] = module
            return module
        }
    }

    private static func open(_ path: String) throws -> PKCS11Module {
        func failure(_ reason: String) -> KeysError {
            KeysError(.pkcs11ModuleUnavailable, "cannot load PKCS#11 module \(path): \(reason)")
        }
        guard path.hasPrefix("/") else { throw failure("give the module's absolute path") }
        // Checked first so the common mistake gets a plain sentence rather than dlerror's.
        guard access(path, F_OK) == 0 else { throw failure(String(cString: strerror(errno))) }
        // RTLD_LOCAL: the module's symbols must not satisfy anyone else's (OpenSSL's, for one).
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw failure(dlerror().map { String(cString: $0) } ?? "dlopen failed")
        }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw failure("it has no C_GetFunctionList, so it is not a PKCS#11 module")
        }
        let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let listed = getFunctionList(&list)
        guard listed == CKR_OK, let list else { throw failure("C_GetFunctionList returned \(PKCS11.name(listed))") }
        guard let initialize = list.pointee.C_Initialize else { throw failure("it has no C_Initialize") }
        // No mutex callbacks: the module uses the operating system's locks.
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CKF_OS_LOCKING_OK
        let initialized = withUnsafeMutablePointer(to: &arguments) { initialize(UnsafeMutableRawPointer($0)) }
        // Already initialised: something else in this process (a library) uses the module too; that is fine.
        guard initialized == CKR_OK || initialized == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
            throw failure("C_Initialize returned \(PKCS11.name(initialized))")
        }
        return PKCS11Module(path: path, functions: list)
    }

    // MARK: Slots and tokens

    /// The slot holding the token `token` names.
    func slot(for token: PKCS11KeyLocation.Token) throws -> CK_SLOT_ID {
        switch token {
        case .slot(let slot):
            var info = CK_TOKEN_INFO()
            let result = try call("C_GetTokenInfo", functions.pointee.C_GetTokenInfo) { $0(CK_SLOT_ID(slot), &info) }
            guard result == CKR_OK else {
                throw KeysError(
                    .pkcs11TokenNotFound,
                    "no token in slot \(slot) of PKCS#11 module \(path) (\(PKCS11.name(result)))\(try presentTokens())")
            }
            return CK_SLOT_ID(slot)
        case .label(let label):
            let tokens = try tokensPresent()
            guard let match = tokens.first(where: { $0.label == label }) else {
                throw KeysError(
                    .pkcs11TokenNotFound, "no token labelled '\(label)' in PKCS#11 module \(path)\(try presentTokens())"
                )
            }
            return match.slot
        }
    }

    /// "; tokens present: 'a' (slot 1), 'b' (slot 2)" or "; no token is present", for messages.
    private func presentTokens() throws -> String {
        let tokens = try tokensPresent()
        guard !tokens.isEmpty else { return "; no token is present" }
        return "; tokens present: " + tokens.map { "'\($0.label)' (slot \($0.slot))" }.joined(separator: ", ")
    }

    /// Every slot with a token, and the token's label.
    func tokensPresent() throws -> [(slot: CK_SLOT_ID, label: String)] {
        guard let getSlotList = functions.pointee.C_GetSlotList else { throw missing("C_GetSlotList") }
        var count: CK_ULONG = 0
        try check("C_GetSlotList", getSlotList(CK_BBOOL(1), nil, &count))
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        if count > 0 { try check("C_GetSlotList", getSlotList(CK_BBOOL(1), &slots, &count)) }
        var tokens: [(slot: CK_SLOT_ID, label: String)] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard try call("C_GetTokenInfo", functions.pointee.C_GetTokenInfo, { $0(slot, &info) }) == CKR_OK else {
                continue
            }
            tokens.append((slot, PKCS11.paddedText(info.label)))
        }
        return tokens
    }

    // MARK: Sessions

    /// A new read-only serial session on `slot`.
    func openSession(_ slot: CK_SLOT_ID) throws -> CK_SESSION_HANDLE {
        var session: CK_SESSION_HANDLE = 0
        let result = try call("C_OpenSession", functions.pointee.C_OpenSession) {
            $0(slot, CKF_SERIAL_SESSION, nil, nil, &session)
        }
        try check("C_OpenSession", result)
        return session
    }

    /// Closes a session; nothing to do about a failure (the session is gone either way).
    func closeSession(_ session: CK_SESSION_HANDLE) {
        _ = functions.pointee.C_CloseSession?(session)
    }

    // MARK: Calls

    /// Calls a function of the table; a module without it gets a clear error instead of a crash.
    func call<Function>(_ name: String, _ function: Function?, _ body: (Function) throws -> CK_RV) throws -> CK_RV {
        guard let function else { throw missing(name) }
        return try body(function)
    }

    func check(_ name: String, _ result: CK_RV, _ code: KeysError.Code = .pkcs11Failed) throws {
        guard result == CKR_OK else { throw failure(name, result, code) }
    }

    func failure(_ name: String, _ result: CK_RV, _ code: KeysError.Code = .pkcs11Failed) -> KeysError {
        KeysError(code, "PKCS#11 \(name) failed with \(PKCS11.name(result)) (module \(path))")
    }

    private func missing(_ name: String) -> KeysError {
        KeysError(.pkcs11Failed, "PKCS#11 module \(path) does not provide \(name)")
    }
}

/// Names and helpers shared by the PKCS#11 code.
enum PKCS11 {
    /// "CKR_PIN_INCORRECT", or the number in hex for codes without a name here.
    static func name(_ result: CK_RV) -> String {
        names[result] ?? "CKR 0x" + String(result, radix: 16)
    }

    private static let names: [CK_RV: String] = [
        CKR_OK: "CKR_OK", CKR_CANCEL: "CKR_CANCEL", CKR_HOST_MEMORY: "CKR_HOST_MEMORY",
        CKR_SLOT_ID_INVALID: "CKR_SLOT_ID_INVALID", CKR_GENERAL_ERROR: "CKR_GENERAL_ERROR",
        CKR_FUNCTION_FAILED: "CKR_FUNCTION_FAILED", CKR_ARGUMENTS_BAD: "CKR_ARGUMENTS_BAD",
        CKR_CANT_LOCK: "CKR_CANT_LOCK", CKR_ATTRIBUTE_SENSITIVE: "CKR_ATTRIBUTE_SENSITIVE",
        CKR_ATTRIBUTE_TYPE_INVALID: "CKR_ATTRIBUTE_TYPE_INVALID", CKR_DATA_INVALID: "CKR_DATA_INVALID",
        CKR_DATA_LEN_RANGE: "CKR_DATA_LEN_RANGE", CKR_DEVICE_ERROR: "CKR_DEVICE_ERROR",
        CKR_DEVICE_MEMORY: "CKR_DEVICE_MEMORY", CKR_DEVICE_REMOVED: "CKR_DEVICE_REMOVED",
        CKR_FUNCTION_NOT_SUPPORTED: "CKR_FUNCTION_NOT_SUPPORTED", CKR_KEY_HANDLE_INVALID: "CKR_KEY_HANDLE_INVALID",
        CKR_KEY_SIZE_RANGE: "CKR_KEY_SIZE_RANGE", CKR_KEY_TYPE_INCONSISTENT: "CKR_KEY_TYPE_INCONSISTENT",
        CKR_KEY_FUNCTION_NOT_PERMITTED: "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_MECHANISM_INVALID: "CKR_MECHANISM_INVALID",
        CKR_MECHANISM_PARAM_INVALID: "CKR_MECHANISM_PARAM_INVALID",
        CKR_OBJECT_HANDLE_INVALID: "CKR_OBJECT_HANDLE_INVALID",
        CKR_OPERATION_ACTIVE: "CKR_OPERATION_ACTIVE", CKR_OPERATION_NOT_INITIALIZED: "CKR_OPERATION_NOT_INITIALIZED",
        CKR_PIN_INCORRECT: "CKR_PIN_INCORRECT", CKR_PIN_INVALID: "CKR_PIN_INVALID",
        CKR_PIN_LEN_RANGE: "CKR_PIN_LEN_RANGE",
        CKR_PIN_EXPIRED: "CKR_PIN_EXPIRED", CKR_PIN_LOCKED: "CKR_PIN_LOCKED", CKR_SESSION_CLOSED: "CKR_SESSION_CLOSED",
        CKR_SESSION_COUNT: "CKR_SESSION_COUNT", CKR_SESSION_HANDLE_INVALID: "CKR_SESSION_HANDLE_INVALID",
        CKR_TEMPLATE_INCOMPLETE: "CKR_TEMPLATE_INCOMPLETE", CKR_TEMPLATE_INCONSISTENT: "CKR_TEMPLATE_INCONSISTENT",
        CKR_TOKEN_NOT_PRESENT: "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_RECOGNIZED: "CKR_TOKEN_NOT_RECOGNIZED",
        CKR_USER_ALREADY_LOGGED_IN: "CKR_USER_ALREADY_LOGGED_IN", CKR_USER_NOT_LOGGED_IN: "CKR_USER_NOT_LOGGED_IN",
        CKR_USER_PIN_NOT_INITIALIZED: "CKR_USER_PIN_NOT_INITIALIZED", CKR_USER_TYPE_INVALID: "CKR_USER_TYPE_INVALID",
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        CKR_BUFFER_TOO_SMALL: "CKR_BUFFER_TOO_SMALL", CKR_CRYPTOKI_NOT_INITIALIZED: "CKR_CRYPTOKI_NOT_INITIALIZED",
        CKR_CRYPTOKI_ALREADY_INITIALIZED: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        CKR_FUNCTION_REJECTED: "CKR_FUNCTION_REJECTED",
    ]

    /// A fixed-width, blank-padded PKCS#11 text field (labels) without its padding.
    static func paddedText<Field>(_ field: Field) -> String {
        withUnsafeBytes(of: field) { bytes in
            var end = bytes.count
            while end > 0 && (bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == 0) { end -= 1 }
            return String(decoding: bytes[0..<end], as: UTF8.self)
        }
    }
}
