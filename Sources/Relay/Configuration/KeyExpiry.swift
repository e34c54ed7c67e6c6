import Foundation

/// Reads `signing.keys.NAME.expires`: a date (`2027-03-31`, midnight UTC), a UTC date and time
/// (`2027-03-31T12:00:00Z`), or Unix seconds.
enum KeyExpiry {
    static func unixTime(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(trimmed), seconds > 0 { return seconds }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = trimmed.count == 10 ? [.withFullDate] : [.withInternetDateTime]
        return formatter.date(from: trimmed).map { Int($0.timeIntervalSince1970) }
    }
}
