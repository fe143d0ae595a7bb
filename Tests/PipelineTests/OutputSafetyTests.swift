import Foundation
import TesseraData
import TesseraEngine
import TesseraInference
import XCTest

/// Outputs never collide, never go stale, and temporary files are removed only when provably dead.
final class OutputSafetyTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-out-\(UUID().uuidString)")
        for folder in ["a", "b"] {
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let image = Image(width: 12, height: 10, channels: 1, samples: .uint8((0..<120).map { UInt8($0) }))
        try ImageCodec.write(image, to: dir.appendingPathComponent("a/x.png"))
        try ImageCodec.write(image, to: dir.appendingPathComponent("a/y.png"))
        try ImageCodec.write(image, to: dir.appendingPathComponent("b/x.png"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func model(_ name: String, seed: Int = 0) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try TesseraProcess.checkpoint(channels: 1, classes: 2 + seed, at: url)
        return url
    }

    /// Two folders holding `x.png`, and `x.png` beside `x.jpg`, stop the run before anything is written.
    func testInputsThatShareAnOutputStopTheRunNamingBoth() throws {
        let ckpt = try model("m.safetensors")
        let out = dir.appendingPathComponent("out")
        let run = try SegmentRun(checkpoint: ckpt, options: SegmentOptions(), out: out)
        XCTAssertThrowsError(
            try run.run(inputs: [dir.appendingPathComponent("a").path, dir.appendingPathComponent("b").path])
        ) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("a/x.png") && text.contains("b/x.png"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing may be written before the check")
        try FileManager.default.copyItem(
            at: dir.appendingPathComponent("a/x.png"), to: dir.appendingPathComponent("a/x.jpg"))
        XCTAssertThrowsError(try run.run(inputs: [dir.appendingPathComponent("a").path])) {
            XCTAssertTrue("\($0)".contains("x.jpg") && "\($0)".contains("x.png"), "\($0)")
        }
        // A glob over both folders is the same list.
        XCTAssertThrowsError(try run.run(inputs: [dir.path + "/*/x.png"]))
        // One folder alone is fine.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("a/x.jpg"))
        XCTAssertEqual(
            try run.run(inputs: [dir.appendingPathComponent("a").path]).records.map(\.status), [.done, .done])
    }

    /// A rerun with another model or settings never reports the old outputs as its own: it stops naming what
    /// changed, or with `--overwrite` recomputes; the same model and settings reuse them.
    func testOutputsOfAnotherModelOrOtherSettingsAreNotReused() throws {
        let first = try model("first.safetensors"), second = try model("second.safetensors", seed: 1)
        let out = dir.appendingPathComponent("out"), input = dir.appendingPathComponent("a").path
        XCTAssertEqual(
            try SegmentRun(checkpoint: first, options: SegmentOptions(), out: out).run(inputs: [input])
                .records.map(\.status), [.done, .done])
        XCTAssertEqual(
            try SegmentRun(checkpoint: first, options: SegmentOptions(), out: out).run(inputs: [input])
                .records.map(\.status), [.existing, .existing])
        XCTAssertThrowsError(
            try SegmentRun(checkpoint: second, options: SegmentOptions(), out: out).run(inputs: [input])
        ) {
            XCTAssertTrue("\($0)".contains("model_sha256") && "\($0)".contains("--overwrite"), "\($0)")
        }
        var tiled = SegmentOptions()
        tiled.tile = 16
        XCTAssertThrowsError(try SegmentRun(checkpoint: first, options: tiled, out: out).run(inputs: [input])) {
            XCTAssertTrue("\($0)".contains("tile (was 32, now 16)"), "\($0)")
        }
        var overwrite = SegmentOptions()
        overwrite.overwrite = true
        let redone = try SegmentRun(checkpoint: second, options: overwrite, out: out).run(inputs: [input])
        XCTAssertEqual(redone.records.map(\.status), [.done, .done])
        XCTAssertEqual(redone.records[0].pixels.count, 3, "the new model's three classes")
        XCTAssertEqual(try OutputProvenance.read(in: out)?.modelSHA256, try OutputProvenance.sha256(of: second))
        // Outputs with no record of what made them (an older Tessera, or copied in) are not taken as this run's.
        try FileManager.default.removeItem(at: out.appendingPathComponent(OutputProvenance.fileName))
        XCTAssertThrowsError(
            try SegmentRun(checkpoint: second, options: SegmentOptions(), out: out).run(inputs: [input]))
        // A pipeline's folder is its own: the outputs are recomputed.
        var pipeline = SegmentOptions()
        pipeline.recomputeStale = true
        XCTAssertEqual(
            try SegmentRun(checkpoint: first, options: pipeline, out: out).run(inputs: [input]).records.map(\.status),
            [.done, .done])
    }

    func testTemporaryNamesCarryTheHostAndOnlyDeadOnesAreRemoved() throws {
        let name = AtomicFile.temporaryName(for: "x.png")
        XCTAssertEqual(TemporaryFiles.owner(of: name), TemporaryFiles.Owner(pid: getpid(), host: AtomicFile.hostName))
        XCTAssertEqual(TemporaryFiles.owner(of: ".x.png.tmp-123-456"), TemporaryFiles.Owner(pid: 123, host: nil))
        XCTAssertNil(TemporaryFiles.owner(of: "x.png"))
        let folder = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // A pid that cannot be running: beyond Linux's pid_max (2^22).
        let dead: Int32 = 4_194_305
        let files = [
            "alive-here": ".a.png.tmp-\(getpid())@\(AtomicFile.hostName)~1",
            "dead-here": ".b.png.tmp-\(dead)@\(AtomicFile.hostName)~2",
            "other-host": ".c.png.tmp-\(dead)@another-node-7~3",
            "other-host-old": ".d.png.tmp-\(dead)@another-node-7~4",
            "unknown-host": ".e.png.tmp-\(dead)-5"
        ]
        for (_, file) in files { try Data([1]).write(to: folder.appendingPathComponent(file)) }
        let old = Date().addingTimeInterval(-2 * TemporaryFiles.maximumAge)
        try FileManager.default.setAttributes(
            [.modificationDate: old],
            ofItemAtPath: folder.appendingPathComponent(files["other-host-old"]!).path)
        let removed = Set(TemporaryFiles.removeStale(under: folder).map(\.lastPathComponent))
        XCTAssertEqual(removed, [files["dead-here"]!, files["other-host-old"]!])
    }

    /// A write leaves the new file and nothing else, and its folder entry is there to read back.
    func testAtomicWritesLeaveOnlyTheFile() throws {
        let url = dir.appendingPathComponent("w/file.bin")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let bytes = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 * 7) })
        try AtomicFile.write(bytes, to: url)
        try AtomicFile.write(bytes.prefix(10), to: url)
        XCTAssertEqual(try Data(contentsOf: url), bytes.prefix(10))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path), ["file.bin"])
        XCTAssertThrowsError(try AtomicFile.write(bytes, to: dir.appendingPathComponent("missing/file.bin")))
    }
}

/// A process killed while it writes a checkpoint leaves no temporary file in the run folder: the bytes go to an
/// unnamed file (`O_TMPFILE`) that vanishes with the process.
final class KilledCheckpointWriteTests: XCTestCase {
    func testAKilledCheckpointWriteLeavesNoTemporaryFile() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tessera-killwrite-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for sub in ["images", "masks"] {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
            for i in 0..<2 {
                let v = (0..<(32 * 32)).map { UInt8(sub == "images" ? ($0 * 7 + i) % 256 : ($0 / 16 + i) % 2) }
                try ImageCodec.write(
                    Image(width: 32, height: 32, channels: 1, samples: .uint8(v)),
                    to: root.appendingPathComponent("\(sub)/s\(i).png"))
            }
        }
        let run = root.appendingPathComponent("run")
        // Width 64, depth 4: 31 M parameters, so last.safetensors (weights and Adam's two moments) is 370 MB.
        let process = Process()
        process.executableURL = TesseraProcess.binary
        try TesseraProcess.requireFreshBinary()
        process.arguments = [
            "train", "--images", root.appendingPathComponent("images").path, "--masks",
            root.appendingPathComponent("masks").path, "--out", run.path, "--width", "64", "--depth", "4",
            "--crop", "32", "--batch", "1", "--steps", "3", "--val-every", "1", "--val-split", "0.5", "--quiet"
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the process holds an open unnamed file in the run folder (shown as `#<inode> (deleted)`) with
        // more than 10 MB in it: a checkpoint being written.
        let fds = "/proc/\(process.processIdentifier)/fd"
        func writingUnnamed() -> Bool {
            for fd in (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? [] {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + fd),
                    target.hasPrefix(run.path + "/"), target.hasSuffix("(deleted)")
                else { continue }
                var info = stat()
                if stat(fds + "/" + fd, &info) == 0, info.st_size > 10_000_000 { return true }
            }
            return false
        }
        let deadline = Date().addingTimeInterval(120)
        var caught = false
        while process.isRunning && Date() < deadline {
            if writingUnnamed() { kill(process.processIdentifier, SIGKILL); caught = true; break }
            usleep(500)
        }
        process.waitUntilExit()
        XCTAssertTrue(caught, "never saw the checkpoint being written through an unnamed file")
        let left = TesseraProcess.files(under: run).filter { $0.contains(".tmp-") || $0.hasPrefix("#") }
        XCTAssertEqual(left, [], "temporary files left in the run folder")
        let sizes = TesseraProcess.files(under: run).map {
            (try? FileManager.default.attributesOfItem(atPath: run.appendingPathComponent($0).path)[.size] as? Int) ?? 0
        }
        print(
            "killed while writing a checkpoint; the run folder holds \(TesseraProcess.files(under: run)) (\(sizes) bytes)"
        )
    }
}
