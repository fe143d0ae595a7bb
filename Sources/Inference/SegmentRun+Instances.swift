import Foundation
import TesseraData
import TesseraEngine
import TesseraObjects

/// What truth masks (`--masks`) hold.
public enum TruthKind: String, Codable, CaseIterable, Sendable {
    /// Class ids (the checkpoint's mask kind): pixel metrics, and objects made the way predictions are.
    case classes
    /// Object ids (an instance label image, 8 or 16-bit, 0 none): object scores only, any class matching any.
    case objects
}

extension SegmentRun {
    var instanceStage: InstanceStage? {
        options.instances.map {
            InstanceStage(settings: $0, classNames: loaded.info.classNames, chunk: options.chunk)
        }
    }

    /// `OUT/instances/<rel>.png` (16-bit) or `.tif` (16 or 32-bit, a page per slice).
    public func instancesURL(relative: String) -> URL {
        let stem = (relative as NSString).deletingPathExtension
        let ext = outputFormat(for: relative) == .tiff ? "tif" : "png"
        return outDirectory.appendingPathComponent("instances/" + stem + "." + ext)
    }

    /// The probabilities the streamed watershed reads: the `prob` output, or a scratch file beside the instances.
    func watershedProbabilityURL(relative: String) -> URL {
        if options.outputs.contains(.prob) { return outputURL(.prob, relative: relative) }
        let url = instancesURL(relative: relative)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".prob.tif")
    }

    /// `OUT/objects/<rel>.csv`.
    public func objectsURL(relative: String) -> URL {
        outDirectory.appendingPathComponent("objects/" + (relative as NSString).deletingPathExtension + ".csv")
    }

    /// What the instances of one image gave the report.
    struct InstanceResult {
        var counts: [Int]
        var metrics: [String: Double]
    }

    /// The instance settings as provenance records them (only when instances are asked for, so folders made
    /// without them keep matching).
    static func instanceSettings(_ options: SegmentOptions) -> [String: String] {
        guard let s = options.instances else { return [:] }
        var text = "\(s.method.rawValue),connectivity=\(s.connectivity.rawValue),min_size=\(s.minSize)"
        text += ",max_hole=\(s.maxHole),exclude_border=\(s.excludeBorder)"
        if s.method == .watershed { text += ",seeds=\(s.seeds.rawValue),seed_depth=\(s.depth)" }
        return ["instances": text]
    }

    /// Finds, writes and scores the objects of an image whose mask is saved: connected components stream from
    /// the saved mask; `whole` holds the slices the watershed (or hole filling) made while the image streamed.
    func writeInstances(
        relative: String, source: PixelSource, whole: [InstanceStage.Slice]?, truth: PixelSource?,
        truthDecoder: MaskDecoder
    ) throws -> InstanceResult {
        guard let stage = instanceStage else { return InstanceResult(counts: [], metrics: [:]) }
        let format = outputFormat(for: relative), w = source.width, h = source.height
        let url = instancesURL(relative: relative), tableURL = objectsURL(relative: relative)
        for folder in [url, tableURL] {
            try FileManager.default.createDirectory(
                at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
        }
        let maskURL = outputURL(.mask, relative: relative)
        let mask = try PixelSource(url: maskURL) { try ImageCodec.decode($0) }
        let overlay = format == .png && options.outputs.contains(.overlay)
        let keepIDs = format == .png || truth != nil
        let scratch = url.deletingLastPathComponent().appendingPathComponent(
            "." + url.lastPathComponent + ".scratch")
        let stitched = url.deletingLastPathComponent().appendingPathComponent(
            "." + url.lastPathComponent + ".stitched")
        let bands = format == .tiff && whole == nil && stage.settings.method == .watershed
        let probability =
            bands
            ? try PixelSource(url: watershedProbabilityURL(relative: relative), tiffPages: .slices) {
                try ImageCodec.decode($0)
            } : nil
        defer {
            try? FileManager.default.removeItem(at: scratch)
            try? FileManager.default.removeItem(at: stitched)
            if bands && !options.outputs.contains(.prob) {
                try? FileManager.default.removeItem(at: watershedProbabilityURL(relative: relative))
            }
        }
        var classes: [[Int]] = []
        var scores: [[String: Double]] = []
        var channels = source.channels
        /// One slice: found, written by `write`, scored, its ids dropped.
        var spilled: [PixelWindow]? = nil
        func slice(_ s: Int, write: (InstanceStage.Slice, ObjectTable?) throws -> Void) throws {
            let found: InstanceStage.Slice, table: ObjectTable?
            if let whole {
                (found, table) = (whole[s], nil)
            } else if let probability {
                let r = try stage.watershedBands(
                    mask: mask, probability: probability, slices: source.slices, image: source, slice: s,
                    spill: stitched, resolved: scratch)
                spilled = r.blocks
                let ids =
                    truth == nil
                    ? nil : try stage.resolvedIDs(scratch, blocks: r.blocks, table: r.table, width: w, height: h)
                (found, table) = (InstanceStage.Slice(ids: ids, objects: r.table.objects), r.table)
            } else {
                let r = try stage.components(
                    mask: mask, image: source, slice: s, spill: keepIDs ? nil : scratch, keepIDs: keepIDs)
                (found, table) = (r.slice, r.table)
            }
            try write(found, table)
            classes.append(found.objects.map(\.objectClass))
            channels = found.objects.first?.meanIntensity.count ?? channels
            if let truth, let ids = found.ids {
                let full = PixelWindow(x: 0, y: 0, width: w, height: h)
                let labels = try truthDecoder.labels(from: try truth.window(full, slice: s), file: truth.file)
                scores.append(score(ids: ids, classes: classes[s], truth: labels, width: w, height: h))
            }
        }
        var tables: [[ObjectMeasurement]] = []
        switch format {
        case .png:
            try slice(0) { found, _ in
                guard found.objects.count <= Int(UInt16.max), let ids = found.ids else {
                    throw ImageError(
                        file: source.file,
                        reason: "\(found.objects.count) objects do not fit a 16-bit PNG label image: use "
                            + "--output-format tiff (32-bit labels)")
                }
                try ImageCodec.write(
                    Image(
                        width: w, height: h, channels: 1, samples: .uint16(ids.map { UInt16(truncatingIfNeeded: $0) })),
                    to: url)
                if overlay {
                    let full = PixelWindow(x: 0, y: 0, width: w, height: h)
                    let labels = try MaskDecoder(kind: .label, classes: loaded.info.classes).labels(
                        from: try mask.window(full), file: maskURL.path)
                    try ImageCodec.write(
                        Overlay.render(
                            image: try source.window(full), labels: labels.map { UInt16(clamping: $0) },
                            colors: paletteColors, instances: ids),
                        to: outputURL(.overlay, relative: relative), quality: 90)
                }
                tables.append(found.objects)
            }
        case .tiff:
            try AtomicFile.write(to: url) { temporary in
                let bytes = Double(w) * Double(h) * 4 * Double(source.slices)
                let writer = try TIFFWriter(url: temporary, bigTIFF: bytes > Double(1 << 31))
                for s in 0..<source.slices {
                    try slice(s) { found, table in
                        try stage.writePage(
                            writer, width: w, height: h, objects: found.objects.count,
                            ids: spilled == nil ? found.ids : nil,
                            spill: found.ids == nil || spilled != nil ? scratch : nil,
                            table: table, blocks: spilled)
                        tables.append(found.objects)
                    }
                }
                try writer.close()
            }
        }
        try AtomicFile.write(Data(stage.table(tables, channels: channels).utf8), to: tableURL)
        return InstanceResult(counts: stage.counts(classes), metrics: SegmentationAgreement.mean(scores))
    }

    /// One slice's object scores against its truth: class ids made into objects, or object ids as they are.
    func score(ids: [UInt32], classes: [Int], truth: [Int32], width w: Int, height h: Int) -> [String: Double] {
        guard let stage = instanceStage else { return [:] }
        if options.truth == .objects {
            return SegmentationAgreement(
                truth: truth.map { UInt32(clamping: max(0, $0)) }, prediction: ids, width: w, height: h
            ).metrics
        }
        return stage.agreement(ids: ids, classes: classes, truth: truth, width: w, height: h)
    }

    /// The decoder of truth masks: the checkpoint's mask kind, or plain ids for object truth.
    var truthDecoder: MaskDecoder {
        options.truth == .objects
            ? MaskDecoder(kind: .label)
            : MaskDecoder(kind: MaskKind(name: loaded.info.maskKind) ?? .label, classes: classes)
    }

    /// The report's object numbers of an image whose outputs an earlier run completed: counts from its objects
    /// table, scores from its label image.
    func rescoreInstances(relative: String, truth: PixelSource?, truthDecoder: MaskDecoder) throws -> InstanceResult {
        guard let stage = instanceStage else { return InstanceResult(counts: [], metrics: [:]) }
        let classes = try stage.classes(fromTable: objectsURL(relative: relative))
        var scores: [[String: Double]] = []
        if let truth {
            let url = instancesURL(relative: relative)
            let saved = try PixelSource(url: url) { try ImageCodec.decode($0) }
            guard saved.width == truth.width, saved.height == truth.height, saved.slices == truth.slices else {
                throw ImageError(
                    file: url.path,
                    reason: "the label image is \(saved.width)x\(saved.height) (\(saved.slices) slices), its truth "
                        + "mask \(truth.width)x\(truth.height) (\(truth.slices))")
            }
            let full = PixelWindow(x: 0, y: 0, width: saved.width, height: saved.height)
            for s in 0..<saved.slices {
                let image = try saved.window(full, slice: s)
                let ids = (0..<(saved.width * saved.height)).map {
                    UInt32(clamping: image.sample(x: $0 % saved.width, y: $0 / saved.width, channel: 0))
                }
                guard s < classes.count, ids.allSatisfy({ Int($0) <= classes[s].count }) else {
                    throw ImageError(file: url.path, reason: "ids do not match its objects table")
                }
                let labels = try truthDecoder.labels(from: try truth.window(full, slice: s), file: truth.file)
                scores.append(
                    score(ids: ids, classes: classes[s], truth: labels, width: saved.width, height: saved.height))
            }
        }
        return InstanceResult(counts: stage.counts(classes), metrics: SegmentationAgreement.mean(scores))
    }
}
