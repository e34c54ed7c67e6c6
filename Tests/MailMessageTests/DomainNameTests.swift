import MailMessage
import Testing

@testable import MailMessage

@Suite("DomainName")
struct DomainNameTests {
    @Test(
        "ASCII domains are lowercased",
        arguments: [
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("MAIL.Example.Org", "mail.example.org"),
            ("sel._domainkey.Example.com", "sel._domainkey.example.com"),
            ("localhost", "localhost"),
            ("a-b.c-d.e", "a-b.c-d.e"),
            ("123.example", "123.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ]
    )
    func ascii(domain: String, expected: String) {
        #expect(DomainName.asciiLowercased(domain) == expected)
        #expect(DomainName.isValid(domain))
    }

    @Test(
        "Unicode labels become A-labels",
        arguments: [
            ("bücher.example", "xn--bcher-kva.example"),
            ("München.de", "xn--mnchen-3ya.de"),
            ("MÜNCHEN.DE", "xn--mnchen-3ya.de"),
            ("www.Bücher.Example", "www.xn--bcher-kva.example"),
            ("straße.de", "xn--strae-oqa.de"),
            ("δοκιμή.example", "xn--jxalpdlp.example"),
            ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
            ("例え.jp", "xn--r8jz45g.jp"),
            ("他们为什么不说中文.example", "xn--ihqwcrb4cv8a8dqg056pqjye.example"),
            ("ü.example", "xn--tda.example"),
            ("aü.example", "xn--a-eha.example"),
            ("bücher。example", "xn--bcher-kva.example"),
            ("bücher．example", "xn--bcher-kva.example"),
            ("\u{212A}elvin.example", "kelvin.example"),
        ]
    )
    func unicode(domain: String, expected: String) {
        #expect(DomainName.asciiLowercased(domain) == expected)
    }

    @Test(
        "invalid domains are nil",
        arguments: [
            "", ".", "example.com.", ".example.com", "a..b", "exa mple.com", "-a.example", "a-.example", "a.-b",
            "a@b", "[192.0.2.1]", "bü cher.example", "bü\u{0}.example", "x\u{7F}.test", "xn--bü.example",
            "-bü.example", "bü-.example", "\u{200B}.example", "ab\u{E000}.test", "a\u{FFFD}.test", "a\u{0}b",
            "a_\u{FC}.example", "bü\u{2028}x.test",
        ]
    )
    func invalid(domain: String) {
        #expect(DomainName.asciiLowercased(domain) == nil)
        #expect(!DomainName.isValid(domain))
    }

    @Test("label length 63 is the limit, ASCII or encoded")
    func labelLength() {
        let label63 = String(repeating: "a", count: 63)
        #expect(DomainName.asciiLowercased(label63 + ".example") == label63 + ".example")
        #expect(DomainName.asciiLowercased(label63 + "a.example") == nil)
        // 58 ASCII + ü: "xn--" + 58 + "-" + "..." > 63.
        #expect(DomainName.asciiLowercased(String(repeating: "a", count: 58) + "ü.example") == nil)
        let longUnicode = String(repeating: "ü", count: 70) + ".example"
        #expect(DomainName.asciiLowercased(longUnicode) == nil)
    }

    @Test("total length 253 is the limit")
    func totalLength() {
        let label = String(repeating: "a", count: 63)
        let name253 = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(name253.utf8.count == 253)
        #expect(DomainName.asciiLowercased(name253) == name253)
        #expect(DomainName.asciiLowercased(name253 + "b") == nil)
        let unicode = [label, label, label, String(repeating: "b", count: 50), "bücher"].joined(separator: ".")
        #expect(DomainName.asciiLowercased(unicode) == nil)
    }

    @Test("an already lowercase ASCII domain is returned as it is")
    func identity() {
        let domain = "mail.example.com"
        #expect(DomainName.asciiLowercased(domain) == domain)
    }
}

@Suite("Punycode (RFC 3492 §7.1 samples)")
struct PunycodeTests {
    private static func scalars(_ codePoints: String) -> [Unicode.Scalar] {
        // The literals below are valid hexadecimal code points, so both unwraps hold.
        codePoints.split(separator: " ").map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
    }

    @Test(
        "the RFC's sample strings",
        arguments: [
            (
                "0644 064A 0647 0645 0627 0628 062A 0643 0644 0645 0648 0634 0639 0631 0628 064A 061F",
                "egbpdaj6bu4bxfgehfvwxn"
            ),
            ("4ED6 4EEC 4E3A 4EC0 4E48 4E0D 8BF4 4E2D 6587", "ihqwcrb4cv8a8dqg056pqjye"),
            ("4ED6 5011 7232 4EC0 9EBD 4E0D 8AAA 4E2D 6587", "ihqwctvzc91f659drss3x8bo0yb"),
            (
                "0050 0072 006F 010D 0070 0072 006F 0073 0074 011B 006E 0065 006D 006C 0075 0076 00ED 010D "
                    + "0065 0073 006B 0079",
                "Proprostnemluvesky-uyb24dma41a"
            ),
            (
                "05DC 05DE 05D4 05D4 05DD 05E4 05E9 05D5 05D8 05DC 05D0 05DE 05D3 05D1 05E8 05D9 05DD 05E2 "
                    + "05D1 05E8 05D9 05EA",
                "4dbcagdahymbxekheh6e0a7fei0b"
            ),
            (
                "092F 0939 0932 094B 0917 0939 093F 0928 094D 0926 0940 0915 094D 092F 094B 0902 0928 0939 "
                    + "0940 0902 092C 094B 0932 0938 0915 0924 0947 0939 0948 0902",
                "i1baa7eci9glrd9b2ae1bj0hfcgg6iyaf8o0a1dig0cd"
            ),
            (
                "306A 305C 307F 3093 306A 65E5 672C 8A9E 3092 8A71 3057 3066 304F 308C 306A 3044 306E 304B",
                "n8jok5ay5dzabd5bym9f0cm5685rrjetr6pdxa"
            ),
            (
                "043F 043E 0447 0435 043C 0443 0436 0435 043E 043D 0438 043D 0435 0433 043E 0432 043E 0440 "
                    + "044F 0442 043F 043E 0440 0443 0441 0441 043A 0438",
                "b1abfaaepdrnnbgefbadotcwatmq2g4l"
            ),
            (
                "0050 006F 0072 0071 0075 00E9 006E 006F 0070 0075 0065 0064 0065 006E 0073 0069 006D 0070 "
                    + "006C 0065 006D 0065 006E 0074 0065 0068 0061 0062 006C 0061 0072 0065 006E 0045 0073 0070 "
                    + "0061 00F1 006F 006C",
                "PorqunopuedensimplementehablarenEspaol-fmd56a"
            ),
            (
                "0054 1EA1 0069 0073 0061 006F 0068 1ECD 006B 0068 00F4 006E 0067 0074 0068 1EC3 0063 0068 "
                    + "1EC9 006E 00F3 0069 0074 0069 1EBF 006E 0067 0056 0069 1EC7 0074",
                "TisaohkhngthchnitingVit-kjcr8268qyxafd2f1b9g"
            ),
            ("0033 5E74 0042 7D44 91D1 516B 5148 751F", "3B-ww4c5e180e575a65lsy2b"),
            ("3072 3068 3064 5C4B 6839 306E 4E0B 0032", "2-u9tlzr9756bt3uc0v"),
            ("004D 0061 006A 0069 3067 004B 006F 0069 3059 308B 0035 79D2 524D", "MajiKoi5-783gue6qz075azm5e"),
            ("30D1 30D5 30A3 30FC 0064 0065 30EB 30F3 30D0", "de-jg4avhby1noc0d"),
            ("305D 306E 30B9 30D4 30FC 30C9 3067", "d9juau41awczczp"),
        ]
    )
    func samples(codePoints: String, expected: String) {
        #expect(Punycode.encode(Self.scalars(codePoints)) == expected)
    }

    @Test("all-basic input gets the delimiter; empty input is empty")
    func basicOnly() {
        #expect(Punycode.encode(Array("abc".unicodeScalars)) == "abc-")
        #expect(Punycode.encode([]) == "")
        #expect(Punycode.encode(Array("☃".unicodeScalars)) == "n3h")
        #expect(Punycode.encode(Array("🕸️".unicodeScalars)) == "v86c4184b")
    }
}
