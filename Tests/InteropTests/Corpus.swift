/// Messages chosen to hit the canonicalization edge cases the verifiers disagree on most often.
/// Every author is in example.com, the signing domain of the interop tests.
enum Corpus {
    static let crlf = "\r\n"

    static func message(_ lines: [String], body: String?) -> [UInt8] {
        var text = lines.map { $0 + crlf }.joined()
        if let body { text += crlf + body }
        return Array(text.utf8)
    }

    static let standardHeader = [
        "From: Alice Example <alice@example.com>",
        "To: Bob <bob@example.org>",
        "Subject: Quarterly report",
        "Date: Tue, 24 Nov 2026 09:00:00 +0000",
        "Message-ID: <corpus-1@example.com>",
    ]

    static var all: [(name: String, bytes: [UInt8])] {
        var messages: [(String, [UInt8])] = []
        func add(_ name: String, _ bytes: [UInt8]) { messages.append((name, bytes)) }
        func add(_ name: String, header: [String] = standardHeader, body: String?) {
            add(name, message(header, body: body))
        }

        add("plain", body: "Hello Bob,\r\n\r\nthe report is attached.\r\n\r\nAlice\r\n")
        add("empty-body", body: "")
        add("no-body-no-separator", body: nil)
        add("only-blank-lines", body: "\r\n\r\n\r\n\r\n")
        add("trailing-whitespace", body: "hello   \r\nworld\t\r\nend \t \r\n")
        add("whitespace-only-lines", body: "first\r\n   \r\n\t\r\n \t \r\nlast\r\n")
        add("trailing-blank-lines-with-spaces", body: "text\r\n\r\n  \r\n\t\r\n\r\n")
        add("inner-whitespace-runs", body: "a  b\t\tc \t d\r\n   leading\r\n\tleading tab\r\n")
        add("no-trailing-crlf", body: "the last line has no line ending")
        add("no-trailing-crlf-trailing-space", body: "text\r\nlast line   ")
        add(
            "long-folded-subject",
            header: [
                "From: alice@example.com",
                "To: bob@example.org",
                "Subject: This subject is long enough that the sending client folded it over\r\n several lines,"
                    + " with\r\n\tfolding white space of both kinds  \r\n   and trailing spaces",
                "Date: Tue, 24 Nov 2026 09:00:00 +0000",
            ],
            body: "body\r\n"
        )
        add(
            "long-folded-recipients",
            header: [
                "From: alice@example.com",
                "To: " + (1...40).map { "Recipient \($0) <r\($0)@example.org>" }.joined(separator: ",\r\n    "),
                "Cc: carol@example.net,\r\n\tdave@example.net",
                "Subject: many recipients",
            ],
            body: "hi all\r\n"
        )
        add(
            "long-unfolded-header",
            header: [
                "From: alice@example.com", "To: bob@example.org",
                "X-Long: " + String(repeating: "0123456789", count: 120), "Subject: long header line",
            ],
            body: "x\r\n"
        )
        add(
            "utf8-headers",
            header: [
                "From: Jöran Ünlü <joran@example.com>", "To: Zoë <zoe@example.org>",
                "Subject: Grüße aus Köln ✓ — 日本語の件名", "Date: Tue, 24 Nov 2026 09:00:00 +0000",
            ],
            body: "plain ascii body\r\n"
        )
        add("utf8-body", body: "Grüße,\r\nこんにちは世界\r\nemoji: 📬 ✉️\r\n")
        add("very-long-line", body: String(repeating: "abcdefghij", count: 2_000) + "\r\nshort\r\n")
        add("very-long-line-no-crlf", body: String(repeating: "x", count: 5_000))
        add("bare-lf", Array("From: alice@example.com\nTo: bob@example.org\nSubject: bare LF\n\nline one\nline two\n".utf8))
        add("mixed-line-endings", Array("From: alice@example.com\r\nTo: bob@example.org\nSubject: mixed\r\n\r\na\nb\r\nc\n".utf8))
        add("bare-cr", Array("From: alice@example.com\r\nSubject: bare CR\r\n\r\none\rtwo\r\n".utf8))
        add(
            "multipart-mime",
            header: standardHeader + [
                "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=\"XYZ\"",
            ],
            body: "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--XYZ\r\n"
                + "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0IGF0dGFjaG1lbnQu\r\n--XYZ--\r\n"
        )
        add(
            "quoted-printable",
            header: standardHeader + ["MIME-Version: 1.0", "Content-Transfer-Encoding: quoted-printable"],
            body: "This line is soft-=\r\nbroken and has =C3=BC in it.=20\r\n"
        )
        add("space-before-colon", header: ["From: alice@example.com", "Subject : spaced name", "To:bob@example.org"], body: "b\r\n")
        add(
            "duplicate-headers",
            header: [
                "Received: from a by b; Tue, 24 Nov 2026 09:00:00 +0000", "Received: from c by d", "From: alice@example.com",
                "To: bob@example.org", "To: second-to@example.org", "Subject: two To fields",
            ],
            body: "dup\r\n"
        )
        add("odd-case-names", header: ["FROM: alice@example.com", "sUbJeCt: Odd Case", "tO: bob@example.org"], body: "c\r\n")
        add("empty-values", header: ["From: alice@example.com", "Subject:", "Cc: ", "To: bob@example.org"], body: "e\r\n")
        add(
            "mailing-list",
            header: standardHeader + [
                "List-Id: Example list <list.example.com>", "List-Unsubscribe: <mailto:leave@example.com>",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click", "List-Post: <mailto:list@example.com>",
                "Precedence: list",
            ],
            body: "list traffic\r\n"
        )
        add(
            "existing-foreign-signature",
            header: [
                "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=other.example; s=x; h=from;\r\n\tbh=AAAA; b=AAAA",
            ] + standardHeader,
            body: "already signed by someone else\r\n"
        )
        add("dot-lines", body: ".hidden line\r\n.\r\n..\r\nend\r\n")
        add("large-body", body: String(repeating: "The quick brown fox jumps over the lazy dog.  \r\n", count: 20_000))
        add(
            "folded-with-trailing-space",
            header: ["From: alice@example.com", "Subject: a  \r\n\t b  \r\n c", "To: bob@example.org"],
            body: "f\r\n"
        )
        add(
            "quoted-local-part-and-comments",
            header: ["From: \"Joe (not a comment)\" <\"joe.q\"@example.com> (a comment)", "To: bob@example.org", "Subject: q"],
            body: "q\r\n"
        )
        add("group-from", header: ["From: Team: alice@example.com;", "To: bob@example.org", "Subject: group"], body: "g\r\n")
        add(
            "latin1-body",
            message(["From: alice@example.com", "Subject: 8-bit"], body: "") + [0x63, 0x61, 0x66, 0xE9, 0x0D, 0x0A, 0xFC, 0x0D, 0x0A]
        )
        add("only-whitespace-body", body: "   \t  ")
        add(
            "received-chain",
            header: [
                "Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n\tby mx.example.org (Postfix) with ESMTPS id 4F\r\n\tfor <bob@example.org>; Tue, 24 Nov 2026 09:00:00 +0000",
            ] + standardHeader,
            body: "r\r\n"
        )
        return messages
    }
}
