import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TesseraTraining
import TestSupport
import XCTest

/// A 5-channel 16-bit TIFF data set (masks as TIFF too) trains a 5-channel U-Net with its own statistics per
/// channel, and the model segments 5-channel TIFFs.
final class MultiChannelTIFFTests: XCTestCase {
    func testFiveChannelTIFFsTrainAndSegment() throws {
        let folder = try TemporaryFolder("tessera-5ch")
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(at: folder.file(sub), withIntermediateDirectories: true)
        }
        var g = RandomGenerator(seed: 5)
        let size = 40, channels = 5
        for i in 0..<6 {
            let cx = 10 + g.nextInt(20), cy = 10 + g.nextInt(20), r = 6 + g.nextInt(5)
            var pixels = [UInt16](repeating: 0, count: size * size * channels)
            var labels = [UInt8](repeating: 0, count: size * size)
            for y in 0..<size {
                for x in 0..<size {
                    let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
                    labels[y * size + x] = inside ? 1 : 0
                    // Channel c sits near c x 10000 (so each has its own mean); the disc shows in channel 3 only.
                    for c in 0..<channels {
                        let signal = c == 3 && inside ? 20000 : 0
                        pixels[(y * size + x) * channels + c] = UInt16(c * 10000 + signal + g.nextInt(3000))
                    }
                }
            }
            try ImageCodec.write(
                Image(width: size, height: size, channels: channels, samples: .uint16(pixels)),
                to: folder.file("images/s\(i).tif"))
            try ImageCodec.write(
                Image(width: size, height: size, channels: 1, samples: .uint8(labels)),
                to: folder.file("masks/s\(i).tif"))
        }
        XCTAssertEqual(try ImageCodec.info(of: folder.file("images/s0.tif")).colorChannels, 5)
        var c = TrainingConfig(images: folder.file("images").path, masks: folder.file("masks").path)
        c.depth = 2
        c.width = 4
        c.crop = 32
        c.batch = 2
        c.steps = 4
        c.validateEvery = 2
        c.validationFraction = 0.34
        let run = TrainRun(config: c, runDirectory: folder.file("run"))
        run.log = { _ in }
        _ = try run.run()
        let checkpoint = folder.file("run/last.safetensors")
        let loaded = try Checkpoint.load(checkpoint)
        XCTAssertEqual(loaded.model.inChannels, 5)
        let mean = loaded.info.normalizationMean
        XCTAssertEqual(mean.count, 5)
        for k in 0..<5 {
            XCTAssertEqual(Double(mean[k]), Double(k * 10000 + 1500) / 65535, accuracy: 0.05, "mean \(k)")
        }
        var o = SegmentOptions()
        o.outputs = [.mask, .prob]
        let summary = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("out"))
            .run(inputs: [folder.file("images").path])
        XCTAssertEqual(summary.failed, 0)
        XCTAssertEqual(summary.records.count, 6)
        let mask = try ImageCodec.decode(folder.file("out/s0.tif"))
        XCTAssertEqual([mask.width, mask.height, mask.channels], [size, size, 1])
        XCTAssertEqual(try TIFFFile(url: folder.file("out/prob/s0.tif")).pageCount, 2)
    }
}
