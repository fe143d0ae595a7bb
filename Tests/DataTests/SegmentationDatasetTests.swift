import Foundation
import TesseraData
import TestSupport
import XCTest

final class SegmentationDatasetTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ds-\(UUID().uuidString)")
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func gray(_ w: Int, _ h: Int, _ values: [UInt8]) -> Image {
        Image(width: w, height: h, channels: 1, samples: .uint8(values))
    }

    func testPairsByStemAcrossFormatsAndMaskKinds() throws {
        let rgb = Image(width: 2, height: 2, channels: 3, samples: .uint8([UInt8](repeating: 90, count: 12)))
        try ImageCodec.write(rgb, to: root.appendingPathComponent("images/a.jpg"))
        try ImageCodec.write(gray(2, 2, [10, 20, 30, 40]), to: root.appendingPathComponent("images/b.png"))
        try ImageCodec.write(gray(2, 2, [0, 255, 255, 0]), to: root.appendingPathComponent("masks/a.png"))
        try ImageCodec.write(gray(2, 2, [255, 255, 0, 0]), to: root.appendingPathComponent("masks/b.png"))
        let ds = try SegmentationDataset(
            images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"),
            maskKind: .binary, classes: 2)
        XCTAssertEqual(ds.pairs.map(\.name), ["a", "b"])
        let a = try ds.load(0)
        XCTAssertEqual(a.labels, [0, 1, 1, 0], "binary: 0 -> class 0, 255 -> class 1")
        XCTAssertEqual(a.image.channels, 3)
        XCTAssertEqual(try ds.foundClasses(), 2)

        // The same masks read as label masks hold ids 0 and 255, outside 2 declared classes: an error naming both files.
        let strict = try SegmentationDataset(
            images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"),
            maskKind: .label, classes: 2)
        XCTAssertThrowsError(try strict.load(0)) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("masks/a.png") && text.contains("images/a.jpg")
                    && text.contains("outside the 2 declared"), text)
        }
    }

    func testPaletteAndColourMasks() throws {
        let indices = gray(3, 1, [0, 2, 1])
        try ImageCodec.write(
            indices, to: root.appendingPathComponent("masks/p.png"), palette: [[0, 0, 0], [200, 0, 0], [0, 200, 0]])
        XCTAssertEqual(
            try MaskDecoder(kind: .palette, classes: 3).labels(of: root.appendingPathComponent("masks/p.png")).ids,
            [0, 2, 1])

        let colours = Image(width: 3, height: 1, channels: 3, samples: .uint8([0, 0, 0, 255, 0, 0, 0, 255, 0]))
        try ImageCodec.write(colours, to: root.appendingPathComponent("masks/c.png"))
        let map: [MaskKind.RGB: Int] = [
            MaskKind.RGB(0, 0, 0): 0, MaskKind.RGB(255, 0, 0): 1, MaskKind.RGB(0, 255, 0): 2
        ]
        XCTAssertEqual(
            try MaskDecoder(kind: .colors(map)).labels(of: root.appendingPathComponent("masks/c.png")).ids, [0, 1, 2])
        XCTAssertThrowsError(
            try MaskDecoder(kind: .colors([MaskKind.RGB(0, 0, 0): 0])).labels(
                of: root.appendingPathComponent("masks/c.png"))
        ) {
            XCTAssertTrue("\($0)".contains("not in the colour map"), "\($0)")
        }
        XCTAssertThrowsError(try MaskDecoder(kind: .palette).labels(of: root.appendingPathComponent("masks/c.png"))) {
            XCTAssertTrue("\($0)".contains("not an indexed"), "\($0)")
        }
    }

    func testMissingMaskSizeMismatchAndListFile() throws {
        try ImageCodec.write(gray(2, 2, [1, 2, 3, 4]), to: root.appendingPathComponent("images/x.png"))
        XCTAssertThrowsError(
            try SegmentationDataset(
                images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"))
        ) {
            XCTAssertTrue("\($0)".contains("images/x.png") && "\($0)".contains("no mask named 'x.*'"), "\($0)")
        }
        try ImageCodec.write(gray(3, 2, [0, 1, 0, 1, 0, 1]), to: root.appendingPathComponent("masks/x.png"))
        let list = root.appendingPathComponent("pairs.txt")
        try "# image mask\nimages/x.png masks/x.png\n\n".write(to: list, atomically: true, encoding: .utf8)
        let ds = try SegmentationDataset(listFile: list)
        XCTAssertEqual(ds.pairs.count, 1)
        XCTAssertThrowsError(try ds.load(0)) {
            XCTAssertTrue("\($0)".contains("mask is 3x2 but its image") && "\($0)".contains("images/x.png"), "\($0)")
        }
        try "images/x.png\n".write(to: list, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SegmentationDataset(listFile: list)) {
            XCTAssertTrue("\($0)".contains("line 1"), "\($0)")
        }
    }

    func testISBISplitIsSeededAndLoadsRealMasks() throws {
        let isbi = try SharedFixtures.require(SharedFixtures.sharedRoot.appendingPathComponent("data/isbi2012"))
        let ds = try SegmentationDataset(
            images: isbi.appendingPathComponent("images"), masks: isbi.appendingPathComponent("masks"),
            maskKind: .binary, classes: 2)
        XCTAssertEqual(ds.pairs.count, 20)
        let (train, validation) = ds.split(validationFraction: 0.2, seed: 0)
        XCTAssertEqual([train.pairs.count, validation.pairs.count], [16, 4])
        XCTAssertEqual(
            ds.split(validationFraction: 0.2, seed: 0).validation.pairs, validation.pairs, "same seed, same split")
        XCTAssertNotEqual(ds.split(validationFraction: 0.2, seed: 1).validation.pairs, validation.pairs)
        XCTAssertTrue(Set(train.pairs.map(\.name)).isDisjoint(with: validation.pairs.map(\.name)))
        let byName = ds.split(validationNames: ["slice16", "slice17", "slice18", "slice19"])
        XCTAssertEqual(byName.validation.pairs.map(\.name), ["slice16", "slice17", "slice18", "slice19"])
        let sample = try ds.load(0)
        XCTAssertEqual([sample.image.width, sample.image.height, sample.image.channels], [512, 512, 1])
        let membrane = sample.labels.filter { $0 == 0 }.count
        // Membranes (label 0) are a minority of an EM slice, but present.
        XCTAssertGreaterThan(membrane, 512 * 512 / 20)
        XCTAssertLessThan(membrane, 512 * 512 / 2)
    }
}
