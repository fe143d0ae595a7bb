import Foundation
import TesseraData
import TesseraEngine
import XCTest

/// ImageFolder and CSV layouts, the stratified split, and the loader's views, determinism and lenient reads.
final class ClassificationDatasetTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    /// A `width` x `height` gray image whose left half is `left` and right half `right`.
    func halves(_ width: Int, _ height: Int, left: UInt8, right: UInt8) -> Image {
        let values = (0..<(width * height)).map { $0 % width < width / 2 ? left : right }
        return Image(width: width, height: height, channels: 1, samples: .uint8(values))
    }

    func write(_ image: Image, _ path: String) throws {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageCodec.write(image, to: url)
    }

    func testImageFolderSortsClassesAndFindsNestedImages() throws {
        for (i, label) in ["zebra", "ant", "moth"].enumerated() {
            for j in 0..<3 { try write(halves(8, 8, left: UInt8(i * 50), right: 255), "\(label)/x\(j).png") }
        }
        try write(halves(8, 8, left: 0, right: 0), "moth/deeper/y.png")
        try Data("not an image".utf8).write(to: root.appendingPathComponent("ant/readme.txt"))
        let set = try ClassificationDataset(root)
        XCTAssertEqual(set.classNames, ["ant", "moth", "zebra"])
        XCTAssertEqual(set.samples.count, 10)
        XCTAssertEqual(
            set.samples.filter { $0.label == 1 }.map(\.name).sorted(),
            ["moth/deeper/y", "moth/x0", "moth/x1", "moth/x2"])
        // Every class keeps samples on both sides; the same seed gives the same split.
        let (train, validation) = set.split(validationFraction: 0.3, seed: 4)
        XCTAssertEqual(Set(validation.samples.map(\.label)), [0, 1, 2])
        XCTAssertEqual(Set(train.samples.map(\.label)), [0, 1, 2])
        XCTAssertEqual(train.samples.count + validation.samples.count, 10)
        XCTAssertEqual(set.split(validationFraction: 0.3, seed: 4).validation.samples, validation.samples)
    }

    func testCSVLabelsHeaderNumericOrderAndErrors() throws {
        for i in 0..<4 { try write(halves(8, 8, left: 0, right: 255), "img/\(i).png") }
        let csv = root.appendingPathComponent("labels.csv")
        try "path,label\nimg/0.png,10\nimg/1.png,2\n# a comment\nimg/2.png,10\nimg/3.png,2\n".write(
            to: csv, atomically: true, encoding: .utf8)
        let set = try ClassificationDataset(csv)
        XCTAssertEqual(set.classNames, ["2", "10"])  // numerically, not "10" before "2"
        XCTAssertEqual(set.samples.map(\.label), [1, 0, 1, 0])
        XCTAssertEqual(set.samples[0].name, "img/0")

        try "img/0.png,a\nimg/0.png,b\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClassificationDataset(csv)) {
            XCTAssertTrue("\($0)".contains("listed twice"), "\($0)")
        }
        try "img/0.png\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClassificationDataset(csv)) { XCTAssertTrue("\($0)".contains("line 1"), "\($0)") }
        try "img/0.png,a\nimg/1.png,c\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClassificationDataset(csv, classNames: ["a", "b"])) {
            XCTAssertTrue("\($0)".contains("label 'c'"), "\($0)")
        }
        try "img/0.png,a\n".write(to: csv, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClassificationDataset(csv)) { XCTAssertTrue("\($0)".contains("two or more"), "\($0)") }
    }

    func testLoaderResizesDeterministicallyAndSkipsUnreadableImages() throws {
        // 128x64 images: the centre view takes the middle 64x64 (left half dark, right half bright as the whole
        // image's halves meet at its centre) and averages 2x2 blocks down to 32.
        try write(halves(128, 64, left: 0, right: 255), "a/0.png")
        try write(halves(128, 64, left: 255, right: 0), "b/0.png")
        try Data("broken".utf8).write(to: root.appendingPathComponent("b/1.png"))
        let set = try ClassificationDataset(root)
        let centre = ClassificationLoader(dataset: set, batchSize: 3, size: 32, shuffle: false)
        let batches = centre.batches(epoch: 0).compactMap { try? $0.get() }
        XCTAssertEqual(batches.count, 1)
        let batch = batches[0]
        XCTAssertEqual(batch.images.shape, [2, 1, 32, 32])
        XCTAssertEqual(batch.labels.scalars, [0, 1])
        XCTAssertEqual(batch.skipped.count, 1)
        XCTAssertTrue("\(batch.skipped[0])".contains("b/1.png"))
        let row = Array(batch.images.scalars[0..<32])
        XCTAssertEqual(row[0], 0, accuracy: 1e-6)
        XCTAssertEqual(row[31], 1, accuracy: 1e-6)
        XCTAssertEqual(row[15], 0, accuracy: 1e-6)
        XCTAssertEqual(row[16], 1, accuracy: 1e-6)

        // Random resized crops with flips: the same seed gives the same pixels, another seed others.
        func crops(_ seed: UInt64) throws -> [Float] {
            let loader = ClassificationLoader(
                dataset: set, batchSize: 3, size: 16, view: .randomResizedCrop(minScale: 0.3, flip: true),
                normalization: .meanStd(mean: [0.5], std: [0.5]), seed: seed)
            return loader.batches(epoch: 1).compactMap { try? $0.get() }.flatMap(\.images.scalars)
        }
        XCTAssertEqual(try crops(7), try crops(7))
        XCTAssertNotEqual(try crops(7), try crops(8))
        XCTAssertTrue(try crops(7).allSatisfy { $0 >= -1 - 1e-5 && $0 <= 1 + 1e-5 })
    }
}
