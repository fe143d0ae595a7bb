import Foundation
import TesseraData
import TesseraEngine
import TestSupport
import XCTest

/// Damaged TIFFs are refused with the file named and a reason, before any outsized allocation, never a crash.
final class TIFFCorruptFileTests: XCTestCase {
    /// A little-endian TIFF and the file offset of each of its first directory's entries, by tag.
    func sample(tiled: Bool, folder: TemporaryFolder) throws -> (Data, [UInt16: Int]) {
        let url = folder.file("sample.tif")
        var layout = TIFFLayout(width: 64, height: 48, channels: 1, bitDepth: 8)
        layout.tile = tiled ? 32 : nil
        layout.stripRows = 48  // one strip: its offset and byte count sit in the entry itself
        layout.compression = .none
        try TIFFWriter.write(
            [TIFFConformanceTests.pattern(width: 64, height: 48, channels: 1, bitDepth: 8)], to: url, layout: layout)
        let data = try Data(contentsOf: url)
        XCTAssertEqual(Array(data.prefix(4)), [0x49, 0x49, 0x2A, 0])
        func u32(_ at: Int) -> Int {
            data[at..<(at + 4)].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        }
        let ifd = u32(4)
        let count = Int(data[ifd]) | Int(data[ifd + 1]) << 8
        var entries: [UInt16: Int] = [:]
        for k in 0..<count {
            let at = ifd + 2 + 12 * k
            entries[UInt16(data[at]) | UInt16(data[at + 1]) << 8] = at
        }
        return (data, entries)
    }

    /// The entry's value field set to `value` (a SHORT or LONG held in the entry).
    func patched(_ data: Data, _ entries: [UInt16: Int], tag: UInt16, value: UInt32, type: UInt16? = nil) -> Data {
        var d = data
        guard let at = entries[tag] else {
            XCTFail("tag \(tag) missing")
            return d
        }
        if let type { d[at + 2] = UInt8(type & 0xFF); d[at + 3] = UInt8(type >> 8) }
        let t = UInt16(d[at + 2]) | UInt16(d[at + 3]) << 8
        for i in 0..<4 { d[at + 8 + i] = 0 }
        if t == 3 {
            d[at + 8] = UInt8(value & 0xFF); d[at + 9] = UInt8((value >> 8) & 0xFF)
        } else {
            for i in 0..<4 { d[at + 8 + i] = UInt8((value >> (8 * UInt32(i))) & 0xFF) }
        }
        return d
    }

    func assertRefused(_ data: Data, _ what: String, folder: TemporaryFolder, line: UInt = #line) {
        let url = folder.file("bad-\(what.filter { $0.isLetter }).tif")
        FileManager.default.createFile(atPath: url.path, contents: data)
        for path in ["memory", "file"] {
            do {
                let image =
                    path == "memory"
                    ? try ImageCodec.decode(data, file: url.path)
                    : try { () throws -> Image in
                        let file = try TIFFFile(url: url)
                        return try file.rows(0..<(try file.page(0).height), page: 0)
                    }()
                XCTFail("\(what) (\(path)): decoded a \(image.width)x\(image.height) image", line: line)
            } catch let e as FileError {
                XCTAssertEqual(e.file, url.path, "\(what)", line: line)
                XCTAssertFalse(e.reason.isEmpty, "\(what)", line: line)
            } catch {
                XCTFail("\(what): \(error)", line: line)
            }
        }
    }

    func testDamagedFilesAreRefusedWithTheFileNamed() throws {
        let folder = try TemporaryFolder()
        let (strips, s) = try sample(tiled: false, folder: folder)
        let (tiles, t) = try sample(tiled: true, folder: folder)
        XCTAssertNoThrow(try ImageCodec.decode(strips, file: "strips"))
        XCTAssertNoThrow(try ImageCodec.decode(tiles, file: "tiles"))
        assertRefused(strips.prefix(strips.count / 2), "truncated", folder: folder)
        assertRefused(strips.prefix(6), "header only", folder: folder)
        assertRefused(Data([0x49, 0x49, 0x2A, 0]) + Data(repeating: 0xA5, count: 300), "garbage", folder: folder)
        var farIFD = strips
        farIFD[4] = 0xF0; farIFD[5] = 0xFF; farIFD[6] = 0xFF; farIFD[7] = 0x7F
        assertRefused(farIFD, "directory past the end", folder: folder)
        assertRefused(patched(strips, s, tag: 273, value: 0x7FFF_FFF0), "strip offset past the end", folder: folder)
        // A bogus byte count of the single uncompressed strip is repaired by libtiff from the image size (nothing
        // of 4 GiB is allocated): the pixels come back as written.
        let original = try ImageCodec.decode(strips, file: "strips")
        for count: UInt32 in [0xFFFF_FFF0, 100] {
            XCTAssertEqual(try ImageCodec.decode(patched(strips, s, tag: 279, value: count), file: "count"), original)
        }
        assertRefused(patched(strips, s, tag: 258, value: 12), "12-bit samples", folder: folder)
        assertRefused(patched(strips, s, tag: 256, value: 0), "zero width", folder: folder)
        assertRefused(patched(strips, s, tag: 257, value: 0xFFFF_FFFF, type: 4), "4-billion-row strip", folder: folder)
        assertRefused(patched(strips, s, tag: 277, value: 60000), "60000 samples a pixel", folder: folder)
        assertRefused(patched(tiles, t, tag: 322, value: 0xFFFF_FFF0, type: 4), "tile width overflow", folder: folder)
        assertRefused(patched(tiles, t, tag: 323, value: 0x0100_0000, type: 4), "tile of 2^24 rows", folder: folder)
        assertRefused(patched(tiles, t, tag: 322, value: 33), "tile width not a multiple of 16", folder: folder)
        assertRefused(
            patched(patched(tiles, t, tag: 256, value: 0xFFFF_FFF0, type: 4), t, tag: 322, value: 0xFFF0),
            "a row of 2^32 pixels of tiles", folder: folder)
    }

    /// Thousands of mutated files (bytes overwritten, runs zeroed, the file cut) across layouts and codecs: each
    /// decodes or fails with an FileError naming it; none crashes or asks for an outsized buffer.
    func testMutatedFilesNeverCrash() throws {
        let folder = try TemporaryFolder()
        var layouts: [TIFFLayout] = []
        for (compression, tile, planar, bits, channels) in [
            (TIFFCompression.lzw, nil, false, 8, 1), (.deflate, 32, false, 16, 3), (.packBits, nil, true, 8, 3),
            (.jpeg, 32, false, 8, 3), (.none, 16, true, 32, 2), (.deflate, nil, false, 1, 1)
        ] as [(TIFFCompression, Int?, Bool, Int, Int)] {
            var l = TIFFLayout(width: 45, height: 37, channels: channels, bitDepth: bits)
            l.tile = tile
            l.stripRows = compression == .jpeg ? 16 : 9
            l.planar = planar
            l.compression = compression
            layouts.append(l)
        }
        var state: UInt64 = 12345
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var decoded = 0, refused = 0
        for (k, layout) in layouts.enumerated() {
            let url = folder.file("m\(k).tif")
            let image = TIFFConformanceTests.pattern(
                width: 45, height: 37, channels: layout.channels, bitDepth: layout.bitDepth)
            try TIFFWriter.write([image], to: url, layout: layout)
            let original = try Data(contentsOf: url)
            for _ in 0..<400 {
                var d = original
                switch next(3) {
                case 0:
                    for _ in 0..<(1 + next(8)) { d[next(d.count)] = UInt8(next(256)) }
                case 1:
                    let at = next(d.count), n = min(d.count - at, 1 + next(64))
                    d.replaceSubrange(at..<(at + n), with: Data(repeating: next(2) == 0 ? 0 : 0xFF, count: n))
                default:
                    d = d.prefix(8 + next(d.count - 8))
                }
                do {
                    _ = try ImageCodec.decode(d, file: "mutant.tif")
                    decoded += 1
                } catch let e as FileError {
                    XCTAssertEqual(e.file, "mutant.tif")
                    refused += 1
                }
            }
        }
        XCTAssertGreaterThan(refused, 500, "the mutations should break most files")
        XCTAssertGreaterThan(decoded, 0)
    }
}
