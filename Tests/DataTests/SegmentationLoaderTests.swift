import Foundation
import TesseraData
import TesseraEngine
import TestSupport
import XCTest

final class SegmentationLoaderTests: XCTestCase {
    var root: URL!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ld-\(UUID().uuidString)")
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        for i in 0..<5 {
            let values = (0..<64).map { UInt8(($0 * 3 + i * 17) % 256) }
            try ImageCodec.write(
                Image(width: 8, height: 8, channels: 1, samples: .uint8(values)),
                to: root.appendingPathComponent("images/s\(i).png"))
            try ImageCodec.write(
                Image(width: 8, height: 8, channels: 1, samples: .uint8(values.map { $0 > 127 ? 255 : 0 })),
                to: root.appendingPathComponent("masks/s\(i).png"))
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func dataset() throws -> SegmentationDataset {
        try SegmentationDataset(
            images: root.appendingPathComponent("images"), masks: root.appendingPathComponent("masks"),
            maskKind: .binary, classes: 2)
    }

    func testBatchesHaveShapesLabelsAndDeterministicAugmentation() throws {
        let aug = AugmentationPipeline([HorizontalFlip(), Rotate90(), RandomCrop(size: 6), Brightness(probability: 1)])
        let loader = SegmentationLoader(
            dataset: try dataset(), batchSize: 2, augmentation: aug,
            normalization: .meanStd(mean: [0.5], std: [0.25]), seed: 3)
        let first = try loader.batches(epoch: 0).map { try $0.get() }
        XCTAssertEqual(first.map { $0.images.shape }, [[2, 1, 6, 6], [2, 1, 6, 6], [1, 1, 6, 6]])
        XCTAssertEqual(first.map { $0.labels.shape }, [[2, 6, 6], [2, 6, 6], [1, 6, 6]])
        XCTAssertEqual(Set(first.flatMap(\.names)).count, 5, "every pair once per epoch")
        XCTAssertTrue(Set(first.flatMap { $0.labels.scalars }).isSubset(of: [0, 1]), "labels stay class ids")
        let again = try loader.batches(epoch: 0).map { try $0.get() }
        XCTAssertEqual(
            again.map { $0.images.scalars }, first.map { $0.images.scalars }, "same seed and epoch, same batches")
        XCTAssertEqual(again.map { $0.labels.scalars }, first.map { $0.labels.scalars })
        let next = try loader.batches(epoch: 1).map { try $0.get() }
        XCTAssertNotEqual(next.map { $0.images.scalars }, first.map { $0.images.scalars })
        let dropLast = SegmentationLoader(dataset: try dataset(), batchSize: 2, dropLast: true)
        XCTAssertEqual(Array(dropLast.batches(epoch: 0)).count, 2)
    }

    func testLabelsMatchImagesWithoutAugmentation() throws {
        let loader = SegmentationLoader(dataset: try dataset(), batchSize: 5, shuffle: false)
        let batch = try XCTUnwrap(loader.batches(epoch: 0).next()).get()
        let x = batch.images.scalars, y = batch.labels.scalars
        for i in 0..<x.count { XCTAssertEqual(y[i], (x[i] * 255).rounded() > 127 ? 1 : 0) }
    }

    func testBadFileIsSkippedAndReportedOrFailsItsBatchWhenStrict() throws {
        try Data("not an image".utf8).write(to: root.appendingPathComponent("images/s2.png"))
        let lenient = SegmentationLoader(dataset: try dataset(), batchSize: 2, shuffle: false, prefetch: 1)
        let batches = try lenient.batches(epoch: 0).map { try $0.get() }
        XCTAssertEqual(batches.map(\.names.count), [2, 1, 1], "s2 left out, the others go on")
        XCTAssertEqual(batches[1].skipped.count, 1)
        XCTAssertTrue("\(batches[1].skipped[0])".contains("images/s2.png"), "\(batches[1].skipped[0])")
        XCTAssertEqual(lenient.failures.count, 1)
        XCTAssertFalse(batches.flatMap(\.names).contains { $0.hasSuffix("s2.png") })

        let strict = SegmentationLoader(dataset: try dataset(), batchSize: 1, shuffle: false, prefetch: 1, strict: true)
        let results = Array(strict.batches(epoch: 0))
        XCTAssertEqual(results.count, 5)
        guard case .failure(let error) = results[2] else { return XCTFail("s2 should fail") }
        XCTAssertTrue("\(error)".contains("images/s2.png"), "\(error)")
        XCTAssertEqual(results.filter { if case .success = $0 { return true } else { return false } }.count, 4)
        // Take one batch and drop the iterator: the producer must stop rather than block forever.
        for _ in 0..<20 { _ = strict.batches(epoch: 1).next() }
        for _ in 0..<20 { _ = lenient.batches(epoch: 1).next() }
        let deadline = Date().addingTimeInterval(30)
        while strict.runningProducers + lenient.runningProducers > 0 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(strict.runningProducers, 0, "producer threads of dropped iterators still running")
        XCTAssertEqual(lenient.runningProducers, 0, "producer threads of dropped iterators still running")
        // An iterator that is kept keeps its producer until the epoch is delivered (so the count can be non-zero).
        let kept = lenient.batches(epoch: 2)
        XCTAssertGreaterThanOrEqual(lenient.runningProducers, 1)
        while kept.next() != nil {}
        while lenient.runningProducers > 0 && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(lenient.runningProducers, 0)
    }
}
