import Foundation
import TesseraCheckpoint
import TesseraData
import TesseraEngine
import TesseraInference
import TestSupport
import XCTest

/// TIFF inputs stream through `segment` chunk by chunk: the results equal the whole-image path bit for bit, and a
/// killed run resumes from its last finished chunk row to the same files an uninterrupted run writes.
final class StreamingSegmentTests: XCTestCase {
    /// A 16-bit gray image with structure at every scale (gradients, discs, noise).
    func image(width: Int, height: Int, seed: UInt64) -> Image {
        var g = RandomGenerator(seed: seed)
        let discs = (0..<(width * height / 900 + 2)).map { _ in
            (Float(g.nextInt(width)), Float(g.nextInt(height)), 4 + 12 * g.nextFloat())
        }
        var v = [UInt16](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                var s = 0.2 + 0.3 * Float(x) / Float(width) + 0.1 * g.nextFloat()
                for (cx, cy, r) in discs where abs(Float(x) - cx) < r && abs(Float(y) - cy) < r {
                    if (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy) < r * r { s += 0.4 }
                }
                v[y * width + x] = UInt16(min(65535, s * 60000))
            }
        }
        return Image(width: width, height: height, channels: 1, samples: .uint16(v))
    }

    /// Logits [classes][h][w] from a Tessera output: safetensors (whole-image path) or float TIFF pages (streamed).
    func logits(_ url: URL) throws -> [Float] {
        if url.pathExtension == "safetensors" { return try SafeTensorsFile(contentsOf: url).tensor("logits").scalars }
        let file = try TIFFFile(url: url)
        return try (0..<file.pageCount).flatMap { p -> [Float] in
            guard case .float32(let v) = try file.rows(0..<(try file.page(p).height), page: p).samples else {
                return []
            }
            return v
        }
    }

    func testStreamedTIFFEqualsTheWholeImagePath() throws {
        let folder = try TemporaryFolder("tessera-stream")
        let checkpoint = folder.file("model.safetensors")
        try TesseraProcess.checkpoint(channels: 1, classes: 3, at: checkpoint)
        let inputs = folder.file("in")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        // Sizes below, across and far past the 256-pixel chunks used here; tiled and striped TIFFs.
        let sizes = [(70, 50), (300, 260), (700, 90), (97, 530)]
        for (k, (w, h)) in sizes.enumerated() {
            let img = image(width: w, height: h, seed: UInt64(k))
            try ImageCodec.write(img, to: inputs.appendingPathComponent("img\(k).png"))
            var layout = TIFFLayout(width: w, height: h, channels: 1, bitDepth: 16)
            layout.tile = k % 2 == 0 ? 64 : nil
            try TIFFWriter.write([img], to: inputs.appendingPathComponent("tif\(k).tif"), layout: layout)
        }
        // One convolution route for every run: whole images and 256-pixel chunks batch different numbers of tiles,
        // which are other plan-cache keys, and routes chosen by timing on a cold cache round differently (a clean
        // clone's CI saw logits differ in the last bits); the route choice is not what this test is about.
        let (runs, routes) = try ConvRoute.taken {
            try ConvRoute.forcing(.im2col) { try runAll(inputs, folder, checkpoint) }
        }
        XCTAssertEqual(routes, [.im2col])
        let (pngs, tiffs, bands) = runs
        XCTAssertEqual(pngs.failed + tiffs.failed + bands.failed, 0)
        try compare(folder, sizes, pngs, tiffs)
    }

    func runAll(_ inputs: URL, _ folder: TemporaryFolder, _ checkpoint: URL) throws -> (
        SegmentRun.Summary, SegmentRun.Summary, SegmentRun.Summary
    ) {
        let count = 4
        var whole = SegmentOptions()
        whole.outputs = [.mask, .logits]
        whole.tile = 64
        whole.chunk = 16384
        let pngs = try SegmentRun(checkpoint: checkpoint, options: whole, out: folder.file("whole"))
            .run(inputs: (0..<count).map { inputs.appendingPathComponent("img\($0).png").path })
        var streamed = whole
        streamed.outputs = [.mask, .logits, .prob]
        streamed.chunk = 256
        let tiffs = try SegmentRun(checkpoint: checkpoint, options: streamed, out: folder.file("streamed"))
            .run(inputs: (0..<count).map { inputs.appendingPathComponent("tif\($0).tif").path })
        // PNG (decoded whole) in chunks of 256 gives the same masks and logits as one chunk.
        var banded = whole
        banded.chunk = 256
        let bands = try SegmentRun(checkpoint: checkpoint, options: banded, out: folder.file("bands"))
            .run(inputs: (0..<count).map { inputs.appendingPathComponent("img\($0).png").path })
        return (pngs, tiffs, bands)
    }

    func compare(
        _ folder: TemporaryFolder, _ sizes: [(Int, Int)], _ pngs: SegmentRun.Summary, _ tiffs: SegmentRun.Summary
    ) throws {
        for k in sizes.indices {
            XCTAssertEqual(
                try ImageCodec.decode(folder.file("bands/img\(k).png")),
                try ImageCodec.decode(folder.file("whole/img\(k).png")))
            XCTAssertEqual(
                try logits(folder.file("bands/logits/img\(k).safetensors")),
                try logits(folder.file("whole/logits/img\(k).safetensors")))
        }
        for (k, (w, h)) in sizes.enumerated() {
            let a = try ImageCodec.decode(folder.file("whole/img\(k).png"))
            let b = try ImageCodec.decode(folder.file("streamed/tif\(k).tif"))
            XCTAssertEqual([b.width, b.height], [w, h])
            XCTAssertEqual(a, b, "mask \(w)x\(h)")
            let la = try logits(folder.file("whole/logits/img\(k).safetensors"))
            let lb = try logits(folder.file("streamed/logits/tif\(k).tif"))
            XCTAssertEqual(la.count, 3 * w * h)
            XCTAssertEqual(la.count, lb.count)
            let worst = zip(la, lb).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-5, "logits \(w)x\(h)")
            XCTAssertEqual(pngs.records[k].pixels, tiffs.records[k].pixels)
            // Probabilities: one 16-bit page per class, summing to 65535 within rounding.
            let prob = try TIFFFile(url: folder.file("streamed/prob/tif\(k).tif"))
            XCTAssertEqual(prob.pageCount, 3)
            let pages = try (0..<3).map { try prob.rows(0..<h, page: $0) }
            for i in stride(from: 0, to: w * h, by: 97) {
                let total = pages.reduce(0) { $0 + $1.sample(x: i % w, y: i / w, channel: 0) }
                XCTAssertLessThanOrEqual(abs(total - 65535), 2)
            }
        }
        // No partial files or progress left.
        let hidden = TesseraProcess.files(under: folder.file("streamed")).filter {
            $0.contains(".partial") || $0.contains(".progress")
        }
        XCTAssertEqual(hidden, [])
    }

    /// A multi-page TIFF (z-slices) gives masks with a page per slice, each as the slice alone gives it.
    func testSlicesBecomePagesOfTheOutputs() throws {
        let folder = try TemporaryFolder("tessera-slices")
        let checkpoint = folder.file("model.safetensors")
        try TesseraProcess.checkpoint(channels: 1, classes: 2, at: checkpoint)
        let slices = (0..<3).map { image(width: 120, height: 90, seed: 10 + UInt64($0)) }
        try TIFFWriter.write(slices, to: folder.file("stack.tif"))
        for (k, slice) in slices.enumerated() { try TIFFWriter.write([slice], to: folder.file("one\(k).tif")) }
        var o = SegmentOptions()
        o.chunk = 256
        let run = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("out"))
        let summary = try run.run(
            inputs: [folder.file("stack.tif").path] + (0..<3).map { folder.file("one\($0).tif").path })
        XCTAssertEqual(summary.failed, 0)
        let stack = try TIFFFile(url: folder.file("out/stack.tif"))
        XCTAssertEqual(stack.pageCount, 3)
        for k in 0..<3 {
            XCTAssertEqual(try stack.rows(0..<90, page: k), try ImageCodec.decode(folder.file("out/one\(k).tif")))
        }
        var png = o
        png.outputFormat = .png
        let refused = try SegmentRun(checkpoint: checkpoint, options: png, out: folder.file("png"))
            .run(inputs: [folder.file("stack.tif").path])
        XCTAssertEqual(refused.failed, 1)
        // Default format settings are not recorded, so folders made before they existed still match their record.
        XCTAssertNil(try OutputProvenance.read(in: folder.file("out"))?.settings["output_format"])
        XCTAssertEqual(try OutputProvenance.read(in: folder.file("png"))?.settings["output_format"], "png")
        XCTAssertTrue(refused.records[0].error?.contains("--output-format tiff") ?? false)
    }

    /// Killed after its first chunk rows, a streamed run resumes from the last recorded chunk row (not from the
    /// start) and leaves the same mask and logits as an uninterrupted run. The process is stopped as soon as the
    /// progress file appears and checked to be still running before the kill.
    func testKilledStreamedRunResumesFromTheLastChunkRow() throws {
        let folder = try TemporaryFolder("tessera-resume")
        let checkpoint = folder.file("model.safetensors")
        try TesseraProcess.checkpoint(channels: 1, classes: 3, at: checkpoint)
        let input = folder.file("slide.tif")
        try CellSlide.write(to: input, width: 1500, height: 2600, bitDepth: 16, seed: 3)
        let arguments = ["--outputs", "mask,logits", "--chunk", "256", "--tile", "64"]
        let binary = TesseraProcess.binary
        try TesseraProcess.requireFreshBinary()
        let out = folder.file("killed")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["segment", input.path, "--model", checkpoint.path, "--out", out.path] + arguments
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let progress = out.appendingPathComponent(".slide.tif.progress")
        let deadline = Date().addingTimeInterval(300)
        while !FileManager.default.fileExists(atPath: progress.path) && process.isRunning && Date() < deadline {
            usleep(1000)
        }
        kill(process.processIdentifier, SIGSTOP)
        let stillRunning = process.isRunning
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertTrue(stillRunning, "the run ended before it could be killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("slide.tif").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(".slide.tif.partial").path))

        var o = SegmentOptions()
        o.outputs = [.mask, .logits]
        o.chunk = 256
        o.tile = 64
        let resumed = try SegmentRun(checkpoint: checkpoint, options: o, out: out).run(inputs: [input.path])
        let fresh = try SegmentRun(checkpoint: checkpoint, options: o, out: folder.file("fresh")).run(inputs: [
            input.path
        ])
        XCTAssertEqual(resumed.failed + fresh.failed, 0)
        let from = try XCTUnwrap(resumed.records[0].resumedFromRow, "the rerun started over")
        XCTAssertGreaterThan(from, 0)
        XCTAssertEqual(from % 256, 0)
        XCTAssertNil(fresh.records[0].resumedFromRow)
        XCTAssertEqual(resumed.records[0].pixels, fresh.records[0].pixels)
        XCTAssertEqual(
            try ImageCodec.decode(out.appendingPathComponent("slide.tif")),
            try ImageCodec.decode(folder.file("fresh/slide.tif")))
        // The killed rows came from another process, whose convolution plans (chosen by timing) may differ from
        // this one's: logits agree to rounding, masks exactly.
        let resumedLogits = try logits(out.appendingPathComponent("logits/slide.tif"))
        let freshLogits = try logits(folder.file("fresh/logits/slide.tif"))
        XCTAssertEqual(resumedLogits.count, freshLogits.count)
        XCTAssertLessThanOrEqual(zip(resumedLogits, freshLogits).map { abs($0 - $1) }.max() ?? 0, 1e-4)
        let left = TesseraProcess.files(under: out).filter { $0.contains(".partial") || $0.contains(".progress") }
        XCTAssertEqual(left, [])
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("report.json")))
        XCTAssertTrue("\(json)".contains("resumed_from_row"))
    }
}
