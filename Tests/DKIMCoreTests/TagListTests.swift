import DKIMCore
import NIOCore
import Testing

@Suite("Tag lists")
struct TagListTests {
    @Test func parsesAndTrims() throws {
        let list = try TagList(parsing: " v=1;a = rsa-sha256 ;\r\n\th=from : to; b=abc\r\n\t def ;")
        #expect(list.tags.map(\.name) == ["v", "a", "h", "b"])
        #expect(list["a"] == "rsa-sha256")
        #expect(list["h"] == "from : to")
        #expect(list["b"] == "abc\r\n\t def")
        #expect(list["x"] == nil)
        #expect(try TagList(parsing: "").tags.isEmpty)
    }

    @Test(arguments: ["v=1;;a=b", "v", "1v=2", "v=1; v=2", "=x", "a b=c"])
    func rejectsMalformed(text: String) {
        #expect(throws: DKIMCoreError.self) { try TagList(parsing: text) }
    }

    @Test func duplicateIsNamed() {
        do {
            _ = try TagList(parsing: "d=a; d=b")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .duplicateTag)
            #expect(error.tag == "d")
        }
    }

    @Test func removesOnlyTheNamedValue() {
        let raw = "DKIM-Signature: v=1; bh=AAAA; b=ab\r\n\tcd ; d=x\r\n"
        let removed = TagList.removingValue(ofTag: "b", from: ByteBuffer(string: raw))
        #expect(String(buffer: removed) == "DKIM-Signature: v=1; bh=AAAA; b= ; d=x\r\n")
        let last = "DKIM-Signature: v=1; bh=AAAA; b=\r\n\tabcd\r\n"
        #expect(
            String(buffer: TagList.removingValue(ofTag: "b", from: ByteBuffer(string: last)))
                == "DKIM-Signature: v=1; bh=AAAA; b=\r\n")
        let absent = ByteBuffer(string: "X: a=1; bh=2\r\n")
        #expect(TagList.removingValue(ofTag: "b", from: absent) == absent)
    }
}

@Suite("Tag list writer")
struct TagListWriterTests {
    static func lines(_ text: String) -> [Substring] {
        text.split(separator: "\r\n", omittingEmptySubsequences: false).map { $0 }
    }

    @Test func foldsAt78ColumnsAndUnfoldsBack() throws {
        var writer = TagListWriter(fieldName: "DKIM-Signature")
        writer.append("v", "1")
        writer.append("a", "rsa-sha256")
        writer.append("d", "a-rather-long-domain-name-for-testing.example.com")
        writer.appendList("h", Array(repeating: "subject", count: 20) + ["from"])
        writer.appendBase64("bh", String(repeating: "A", count: 43) + "=")
        writer.appendBase64("b", String(repeating: "Q", count: 344))
        let text = writer.text
        for line in Self.lines(text) {
            #expect(line.utf8.count <= 78, "\(line)")
        }
        #expect(!text.hasSuffix(";"))
        #expect(text.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256;"))
        let value = String(text.dropFirst("DKIM-Signature:".count))
        let tags = try TagList(parsing: value)
        #expect(tags["d"] == "a-rather-long-domain-name-for-testing.example.com")
        #expect(Base64.decode(tags["b"]!)!.count == 258)
        let names = tags["h"]!.split(separator: ":").map { $0.trimmingCharacters() }
        #expect(names.count == 21 && names.last == "from")
    }

    @Test func base64FillsEveryLineButItsLast() {
        for prefixLength in 1..<80 {
            var writer = TagListWriter(fieldName: "DKIM-Signature")
            writer.append("d", String(repeating: "d", count: prefixLength))
            writer.appendBase64("b", String(repeating: "Q", count: 344))
            let lines = Self.lines(writer.text)
            let valueLines = lines.drop { !$0.contains("b=") }
            #expect(valueLines.dropLast().allSatisfy { $0.utf8.count == 77 }, "\(lines)")
            #expect(valueLines.map { $0.filter { $0 == "Q" }.count }.reduce(0, +) == 344)
        }
    }

    @Test func emptyBase64ValueIsAPrefix() {
        for domainLength in 1..<80 {
            var writer = TagListWriter(fieldName: "DKIM-Signature")
            writer.append("d", String(repeating: "d", count: domainLength))
            var empty = writer
            empty.appendBase64("b", "")
            writer.appendBase64("b", String(repeating: "x", count: 100))
            #expect(writer.text.hasPrefix(empty.text))
            #expect(!writer.text.hasPrefix(empty.text + "\r\n"), "value must start on the b= line")
        }
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { " \t\r\n".contains($0) }.reversed().drop { " \t\r\n".contains($0) }.reversed())
    }
}
