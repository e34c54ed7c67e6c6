import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Which malloc this process actually uses, for the startup log: the library that provides the `malloc` symbol
/// the dynamic linker bound (`signet` links jemalloc; LD_PRELOAD of libc.so.6 brings glibc's back, which is how
/// `make bench` measures the difference).
enum ProcessAllocator {
    static func describe() -> String {
        #if canImport(Glibc)
            guard let malloc = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc") else { return "unknown" }
            // dladdr needs _GNU_SOURCE, which the Glibc module does not set; the mapping that holds the address says
            // the same.
            guard let library = mappedFile(containing: UInt(bitPattern: malloc)) else { return "unknown" }
            if library.contains("jemalloc") { return "jemalloc \(jemallocVersion() ?? "?") (\(library))" }
            // Under a sanitizer, malloc is the sanitizer runtime's (in the executable or its own library).
            return library.contains("/libc.so") ? "glibc malloc (\(library))" : "malloc from \(library)"
        #else
            return "system malloc"
        #endif
    }

    #if canImport(Glibc)
        /// The file mapped at `address`, from /proc/self/maps.
        private static func mappedFile(containing address: UInt) -> String? {
            // Read to the end: procfs files report size 0, and String(contentsOfFile:) stops after the first page.
            guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps"),
                let data = try? handle.readToEnd(), let maps = String(data: data, encoding: .utf8)
            else { return nil }
            for line in maps.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 6, let dash = fields[0].firstIndex(of: "-"),
                    let low = UInt(fields[0][..<dash], radix: 16),
                    let high = UInt(fields[0][fields[0].index(after: dash)...], radix: 16),
                    low <= address && address < high
                else { continue }
                return fields[5...].joined(separator: " ")
            }
            return nil
        }

        /// jemalloc's "version" mallctl, looked up at run time so this module does not link jemalloc itself.
        private static func jemallocVersion() -> String? {
            typealias MallCtl =
                @convention(c) (
                    UnsafePointer<CChar>?, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?,
                    UnsafeMutableRawPointer?,
                    Int
                ) -> Int32
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallctl") else { return nil }
            let mallctl = unsafeBitCast(symbol, to: MallCtl.self)
            var version: UnsafePointer<CChar>?
            var size = MemoryLayout<UnsafePointer<CChar>?>.size
            guard mallctl("version", &version, &size, nil, 0) == 0, let version else { return nil }
            return String(cString: version)
        }
    #endif
}
